//! Declarative lifecycles: `workflows/*.toml` compiled into [`Definition`]s, and the pure
//! [`step`] function. No I/O and no clock here: the caller passes `now`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::core::domain::{EmailAddress, Locale, Span, Timestamp};

/// The role every workflow may send to without declaring it: the partner's own contact.
pub const PARTNER_ROLE: &str = "partner";

/// A compile error, always located: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CompileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Checks a template against a sample context; implemented by the email layer.
pub trait TemplateCheck {
    /// `Err(reason)` when `template` is missing in a locale or does not render with `context`.
    fn check(&self, template: &str, context: &Value) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Email,
    Datetime,
    Integer,
    Boolean,
    Json,
}

#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub ty: FieldType,
    pub required: bool,
    pub values: Option<Vec<String>>,
    pub sample: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    Equal(String, Value),
    NotEqual(String, Value),
    Present(String),
    Absent(String),
}

impl Guard {
    fn holds(&self, data: &Map<String, Value>) -> bool {
        let get = |f: &str| data.get(f).filter(|v| !v.is_null());
        match self {
            Guard::Equal(f, v) => get(f) == Some(v),
            Guard::NotEqual(f, v) => get(f) != Some(v),
            Guard::Present(f) => get(f).is_some(),
            Guard::Absent(f) => get(f).is_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimerWhen {
    After(Span),
    At { field: String, offset: Span },
}

/// An effect as declared; [`step`] resolves it to an [`Effect`].
#[derive(Debug, Clone, PartialEq)]
pub enum EffectSpec {
    SendEmail {
        template: String,
        to: String,
    },
    ScheduleTimer {
        name: String,
        when: TimerWhen,
        event: String,
    },
    CancelTimer {
        name: String,
    },
    SetTime {
        field: String,
        after: Span,
    },
    Extend {
        field: String,
        by: Span,
    },
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub from: Vec<String>,
    pub event: String,
    pub to: String,
    pub guards: Vec<Guard>,
    pub effects: Vec<EffectSpec>,
    pub line: usize,
}

/// A compiled workflow. Everything in it has been checked; [`step`] cannot meet a name it
/// does not know.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub initial: String,
    pub states: Vec<String>,
    pub finals: BTreeSet<String>,
    pub events: Vec<String>,
    pub roles: BTreeMap<String, String>,
    pub data: BTreeMap<String, FieldSpec>,
    pub durations: BTreeMap<String, Span>,
    pub transitions: Vec<Transition>,
}

/// A resolved effect: what the engine must make happen after committing a transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    SendEmail {
        template: String,
        role: String,
    },
    ScheduleTimer {
        name: String,
        at: Timestamp,
        event: String,
    },
    CancelTimer {
        name: String,
    },
    CancelAllTimers,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub from: String,
    pub to: String,
    pub data: Map<String, Value>,
    pub effects: Vec<Effect>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("workflow `{workflow}` has no event `{event}`")]
    UnknownEvent { workflow: String, event: String },
    #[error("`{event}` is not possible: the instance is in the final state `{state}`")]
    Final { state: String, event: String },
    #[error("`{event}` is not possible in state `{state}`")]
    NotAllowed { state: String, event: String },
    #[error("timer `{timer}` needs `{field}`, which is not set")]
    MissingTime { timer: String, field: String },
}

impl Definition {
    pub fn is_final(&self, state: &str) -> bool {
        self.finals.contains(state)
    }

    /// Events that have at least one transition out of `state`.
    pub fn events_from(&self, state: &str) -> BTreeSet<&str> {
        self.transitions
            .iter()
            .filter(|t| t.from.iter().any(|f| f == state))
            .map(|t| t.event.as_str())
            .collect()
    }

    /// Templates this workflow sends, with the role each goes to.
    pub fn templates(&self) -> BTreeSet<(&str, &str)> {
        self.transitions
            .iter()
            .flat_map(|t| t.effects.iter())
            .filter_map(|e| match e {
                EffectSpec::SendEmail { template, to } => Some((template.as_str(), to.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Validates instance data at the edge: known fields, types, allowed values, required
    /// fields. Returns the normalised map with every declared field present (null if unset).
    pub fn validate_data(&self, input: &Map<String, Value>) -> Result<Map<String, Value>, String> {
        for k in input.keys() {
            if !self.data.contains_key(k) {
                return Err(format!("workflow `{}` has no data field `{k}`", self.name));
            }
        }
        let mut out = Map::new();
        for (name, spec) in &self.data {
            let v = input.get(name).cloned().unwrap_or(Value::Null);
            if v.is_null() {
                if spec.required {
                    return Err(format!("data field `{name}` is required"));
                }
                out.insert(name.clone(), Value::Null);
                continue;
            }
            out.insert(name.clone(), normalise(name, spec, v)?);
        }
        Ok(out)
    }

    /// A context with every field set to a sample, and one with optional fields unset: the
    /// two shapes a template of this workflow can meet.
    pub fn sample_data(&self, with_optional: bool) -> Map<String, Value> {
        self.samples(with_optional, None)
    }

    /// [`Definition::sample_data`] with sample texts in `locale`'s language (what
    /// `templates render` shows).
    pub fn sample_data_in(&self, with_optional: bool, locale: Locale) -> Map<String, Value> {
        self.samples(with_optional, Some(locale))
    }

    fn samples(&self, with_optional: bool, locale: Option<Locale>) -> Map<String, Value> {
        self.data
            .iter()
            .map(|(name, spec)| {
                let v = if spec.required || with_optional {
                    sample_value(name, spec, locale)
                } else {
                    Value::Null
                };
                (name.clone(), v)
            })
            .collect()
    }
}

fn normalise(name: &str, spec: &FieldSpec, v: Value) -> Result<Value, String> {
    let bad = |what: &str| format!("data field `{name}` must be {what}");
    let v = match spec.ty {
        FieldType::String => match v {
            Value::String(s) => Value::String(s),
            _ => return Err(bad("a string")),
        },
        FieldType::Email => match v {
            Value::String(s) => Value::String(
                EmailAddress::parse(&s)
                    .map_err(|e| format!("data field `{name}`: {e}"))?
                    .as_str()
                    .to_string(),
            ),
            _ => return Err(bad("an email address")),
        },
        FieldType::Datetime => match v {
            Value::String(s) => Value::String(
                Timestamp::parse_rfc3339(&s)
                    .map_err(|e| format!("data field `{name}`: {e}"))?
                    .to_rfc3339(),
            ),
            _ => return Err(bad("an RFC 3339 date-time string")),
        },
        FieldType::Integer => match v {
            Value::Number(n) if n.is_i64() => Value::Number(n),
            _ => return Err(bad("an integer")),
        },
        FieldType::Boolean => match v {
            Value::Bool(b) => Value::Bool(b),
            _ => return Err(bad("true or false")),
        },
        FieldType::Json => v,
    };
    if let (Some(values), Value::String(s)) = (&spec.values, &v)
        && !values.iter().any(|x| x == s)
    {
        return Err(format!(
            "data field `{name}` is `{s}`; allowed: {}",
            values.join(", ")
        ));
    }
    Ok(v)
}

/// A sample for a field without one of its own: in `locale`'s language, or (None) the
/// language-neutral form the compile check and the snapshots use.
fn sample_value(name: &str, spec: &FieldSpec, locale: Option<Locale>) -> Value {
    if let Some(s) = &spec.sample {
        return s.clone();
    }
    if let Some(values) = &spec.values
        && let Some(first) = values.first()
    {
        return Value::String(first.clone());
    }
    let words = name.replace('_', " ");
    match spec.ty {
        FieldType::String => Value::String(match locale {
            None => format!("Beispiel {name}"),
            Some(Locale::De) => format!("Beispiel {words}"),
            Some(Locale::En) => format!("Example {words}"),
        }),
        FieldType::Email => Value::String(match locale {
            Some(Locale::En) => "customer@contoso.example".into(),
            _ => "kunde@contoso.example".into(),
        }),
        FieldType::Datetime => Value::String("2026-12-24T10:00:00Z".into()),
        FieldType::Integer => Value::from(10),
        FieldType::Boolean => Value::Bool(true),
        FieldType::Json => Value::Object(Map::new()),
    }
}

/// The pure core: given a definition, the instance's state and data, an event and the time,
/// decide the next state, the new data and the effects. Never does I/O.
pub fn step(
    def: &Definition,
    state: &str,
    data: &Map<String, Value>,
    event: &str,
    now: Timestamp,
) -> Result<Decision, StepError> {
    if !def.events.iter().any(|e| e == event) {
        return Err(StepError::UnknownEvent {
            workflow: def.name.clone(),
            event: event.to_string(),
        });
    }
    if def.is_final(state) {
        return Err(StepError::Final {
            state: state.to_string(),
            event: event.to_string(),
        });
    }
    let t = def
        .transitions
        .iter()
        .find(|t| {
            t.event == event
                && t.from.iter().any(|f| f == state)
                && t.guards.iter().all(|g| g.holds(data))
        })
        .ok_or_else(|| StepError::NotAllowed {
            state: state.to_string(),
            event: event.to_string(),
        })?;
    let mut data = data.clone();
    let mut effects = Vec::with_capacity(t.effects.len() + 1);
    for e in &t.effects {
        match e {
            EffectSpec::SendEmail { template, to } => effects.push(Effect::SendEmail {
                template: template.clone(),
                role: to.clone(),
            }),
            EffectSpec::ScheduleTimer { name, when, event } => {
                let at = match when {
                    TimerWhen::After(d) => now.plus(*d),
                    TimerWhen::At { field, offset } => time_field(&data, field)
                        .ok_or_else(|| StepError::MissingTime {
                            timer: name.clone(),
                            field: field.clone(),
                        })?
                        .plus(*offset),
                };
                effects.push(Effect::ScheduleTimer {
                    name: name.clone(),
                    at,
                    event: event.clone(),
                });
            }
            EffectSpec::CancelTimer { name } => {
                effects.push(Effect::CancelTimer { name: name.clone() })
            }
            EffectSpec::SetTime { field, after } => {
                data.insert(field.clone(), Value::String(now.plus(*after).to_rfc3339()));
            }
            EffectSpec::Extend { field, by } => {
                let base = time_field(&data, field).unwrap_or(now).max(now);
                data.insert(field.clone(), Value::String(base.plus(*by).to_rfc3339()));
            }
        }
    }
    if def.is_final(&t.to) {
        effects.push(Effect::CancelAllTimers);
    }
    Ok(Decision {
        from: state.to_string(),
        to: t.to.clone(),
        data,
        effects,
    })
}

fn time_field(data: &Map<String, Value>, field: &str) -> Option<Timestamp> {
    data.get(field)
        .and_then(Value::as_str)
        .and_then(|s| Timestamp::parse_rfc3339(s).ok())
}

// ---------------------------------------------------------------------------------------
// Compilation

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    #[serde(default)]
    description: String,
    initial: Spanned<String>,
    states: Vec<Spanned<String>>,
    #[serde(rename = "final")]
    finals: Vec<Spanned<String>>,
    events: Vec<Spanned<String>>,
    #[serde(default)]
    roles: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    data: BTreeMap<String, Spanned<RawField>>,
    #[serde(default)]
    durations: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    transitions: Vec<Spanned<RawTransition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type")]
    ty: FieldType,
    #[serde(default)]
    required: bool,
    values: Option<Vec<String>>,
    sample: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransition {
    from: Spanned<toml::Value>,
    event: Spanned<String>,
    to: Spanned<String>,
    guard: Option<Spanned<toml::Value>>,
    #[serde(default)]
    effects: Vec<Spanned<RawEffect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEffect {
    send_email: Option<String>,
    to: Option<String>,
    schedule_timer: Option<String>,
    after: Option<String>,
    at: Option<String>,
    offset: Option<String>,
    event: Option<String>,
    cancel_timer: Option<String>,
    set_time: Option<String>,
    extend: Option<String>,
    by: Option<String>,
}

struct Ctx<'a> {
    file: String,
    text: &'a str,
    errors: Vec<CompileError>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }
    fn err(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) {
        let line = self.line(span.start);
        self.errors.push(CompileError {
            file: self.file.clone(),
            line,
            message: message.into(),
        });
    }
}

/// Compiles every `*.toml` in `dir`. Duration overrides come from config, per workflow name.
pub fn compile_dir(
    dir: &Path,
    overrides: &BTreeMap<String, BTreeMap<String, Span>>,
    templates: &dyn TemplateCheck,
) -> Result<BTreeMap<String, Definition>, Vec<CompileError>> {
    let mut defs = BTreeMap::new();
    let mut errors = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            return Err(vec![CompileError {
                file: dir.display().to_string(),
                line: 0,
                message: format!("cannot read the workflows folder: {e}"),
            }]);
        }
    };
    files.sort();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(CompileError {
                    file: path.display().to_string(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let empty = BTreeMap::new();
        let ov = overrides.get(&name).unwrap_or(&empty);
        match compile(&path, &text, ov, templates) {
            Ok(d) => {
                defs.insert(name, d);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    for name in overrides.keys() {
        if !defs.contains_key(name) && !errors.iter().any(|e| e.file.contains(name.as_str())) {
            errors.push(CompileError {
                file: "config".into(),
                line: 0,
                message: format!("[workflows.{name}] names no workflow in {}", dir.display()),
            });
        }
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(errors)
    }
}

/// Compiles one workflow file's text. All errors found are returned, not just the first.
pub fn compile(
    path: &Path,
    text: &str,
    duration_overrides: &BTreeMap<String, Span>,
    templates: &dyn TemplateCheck,
) -> Result<Definition, Vec<CompileError>> {
    let mut cx = Ctx {
        file: path.display().to_string(),
        text,
        errors: Vec::new(),
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw: RawWorkflow = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().to_string());
            return Err(cx.errors);
        }
    };

    // States and events: declared once each.
    let mut states = Vec::new();
    for s in &raw.states {
        if states.contains(s.get_ref()) {
            cx.err(
                s.span(),
                format!("state `{}` is declared twice", s.get_ref()),
            );
        }
        states.push(s.get_ref().clone());
    }
    let mut events = Vec::new();
    for e in &raw.events {
        if events.contains(e.get_ref()) {
            cx.err(
                e.span(),
                format!("event `{}` is declared twice", e.get_ref()),
            );
        }
        events.push(e.get_ref().clone());
    }
    let known_state = |cx: &mut Ctx, s: &Spanned<String>| {
        if !states.contains(s.get_ref()) {
            cx.err(s.span(), format!("unknown state `{}`", s.get_ref()));
        }
    };
    known_state(&mut cx, &raw.initial);
    let mut finals = BTreeSet::new();
    for f in &raw.finals {
        known_state(&mut cx, f);
        finals.insert(f.get_ref().clone());
    }
    if finals.contains(raw.initial.get_ref()) {
        cx.err(raw.initial.span(), "the initial state cannot be final");
    }

    // Data fields.
    let mut data = BTreeMap::new();
    for (fname, f) in &raw.data {
        let rf = f.get_ref();
        if rf.values.is_some() && rf.ty != FieldType::String {
            cx.err(
                f.span(),
                format!("data field `{fname}`: `values` applies to strings only"),
            );
        }
        if rf.ty == FieldType::Json && rf.sample.is_none() {
            cx.err(
                f.span(),
                format!("data field `{fname}` of type json needs a `sample` for template checks"),
            );
        }
        let sample = rf
            .sample
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        let spec = FieldSpec {
            ty: rf.ty,
            required: rf.required,
            values: rf.values.clone(),
            sample: None,
        };
        if let Some(s) = &sample
            && rf.ty != FieldType::Json
            && let Err(e) = normalise(fname, &spec, s.clone())
        {
            cx.err(f.span(), format!("sample: {e}"));
        }
        data.insert(fname.clone(), FieldSpec { sample, ..spec });
    }

    // Roles map to email fields.
    let mut roles = BTreeMap::new();
    for (role, field) in &raw.roles {
        if role == PARTNER_ROLE {
            cx.err(
                field.span(),
                "role `partner` is built in; do not declare it",
            );
        }
        match data.get(field.get_ref()) {
            Some(spec) if spec.ty == FieldType::Email => {}
            Some(_) => cx.err(
                field.span(),
                format!(
                    "role `{role}`: field `{}` is not of type email",
                    field.get_ref()
                ),
            ),
            None => cx.err(
                field.span(),
                format!("role `{role}`: unknown data field `{}`", field.get_ref()),
            ),
        }
        roles.insert(role.clone(), field.get_ref().clone());
    }

    // Durations, with config overrides on top.
    let mut durations = BTreeMap::new();
    for (dname, d) in &raw.durations {
        match d.get_ref().parse::<Span>() {
            Ok(s) if s.0 > 0 => {
                durations.insert(dname.clone(), s);
            }
            Ok(_) => cx.err(d.span(), format!("duration `{dname}` must be positive")),
            Err(e) => cx.err(d.span(), format!("duration `{dname}`: {e}")),
        }
    }
    for (dname, s) in duration_overrides {
        if !raw.durations.contains_key(dname) {
            cx.err(
                0..0,
                format!(
                    "config overrides duration `{dname}`, which this workflow does not declare"
                ),
            );
        }
        durations.insert(dname.clone(), *s);
    }

    // Transitions.
    let mut transitions = Vec::new();
    for t in &raw.transitions {
        let line = cx.line(t.span().start);
        let rt = t.get_ref();
        let from: Vec<Spanned<String>> = match rt.from.get_ref() {
            toml::Value::String(s) => vec![Spanned::new(rt.from.span(), s.clone())],
            toml::Value::Array(a) if !a.is_empty() && a.iter().all(|v| v.is_str()) => a
                .iter()
                .filter_map(|v| v.as_str())
                .map(|s| Spanned::new(rt.from.span(), s.to_string()))
                .collect(),
            _ => {
                cx.err(rt.from.span(), "`from` must be a state or a list of states");
                Vec::new()
            }
        };
        for f in &from {
            known_state(&mut cx, f);
            if finals.contains(f.get_ref()) {
                cx.err(
                    f.span(),
                    format!("final state `{}` cannot have an exit", f.get_ref()),
                );
            }
        }
        known_state(&mut cx, &rt.to);
        if !events.contains(rt.event.get_ref()) {
            cx.err(
                rt.event.span(),
                format!("unknown event `{}`", rt.event.get_ref()),
            );
        }
        let guards = match &rt.guard {
            None => Vec::new(),
            Some(g) => parse_guards(&mut cx, g, &data),
        };
        let mut effects = Vec::new();
        for e in &rt.effects {
            if let Some(spec) = parse_effect(&mut cx, e, &events, &data, &roles, &durations) {
                effects.push(spec);
            }
        }
        transitions.push(Transition {
            from: from.into_iter().map(|s| s.into_inner()).collect(),
            event: rt.event.get_ref().clone(),
            to: rt.to.get_ref().clone(),
            guards,
            effects,
            line,
        });
    }

    // Reachability and dead ends.
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([raw.initial.get_ref().clone()]);
    while let Some(s) = queue.pop_front() {
        if !seen.insert(s.clone()) {
            continue;
        }
        for t in transitions.iter().filter(|t| t.from.contains(&s)) {
            queue.push_back(t.to.clone());
        }
    }
    for s in &raw.states {
        if !seen.contains(s.get_ref()) {
            cx.err(
                s.span(),
                format!(
                    "state `{}` is unreachable from `{}`",
                    s.get_ref(),
                    raw.initial.get_ref()
                ),
            );
        } else if !finals.contains(s.get_ref())
            && !transitions.iter().any(|t| t.from.contains(s.get_ref()))
        {
            cx.err(
                s.span(),
                format!("state `{}` is not final and has no way out", s.get_ref()),
            );
        }
    }
    for e in &raw.events {
        if !transitions.iter().any(|t| &t.event == e.get_ref()) {
            cx.err(
                e.span(),
                format!("event `{}` is used by no transition", e.get_ref()),
            );
        }
    }

    let def = Definition {
        name,
        file: path.to_path_buf(),
        description: raw.description,
        initial: raw.initial.into_inner(),
        states,
        finals,
        events,
        roles,
        data,
        durations,
        transitions,
    };

    // Templates: each must exist and render with what this workflow supplies.
    if cx.errors.is_empty() {
        for t in &raw.transitions {
            for e in &t.get_ref().effects {
                let Some(template) = &e.get_ref().send_email else {
                    continue;
                };
                let role = e.get_ref().to.clone().unwrap_or_default();
                for with_optional in [true, false] {
                    let ctx = sample_context(&def, &role, with_optional);
                    if let Err(msg) = templates.check(template, &ctx) {
                        let which = if with_optional {
                            ""
                        } else {
                            " (optional fields unset)"
                        };
                        cx.err(e.span(), format!("template `{template}`{which}: {msg}"));
                        break;
                    }
                }
            }
        }
    }
    if cx.errors.is_empty() {
        Ok(def)
    } else {
        Err(cx.errors)
    }
}

/// The context a template of `def` sees, with sample values: what `check` renders.
pub fn sample_context(def: &Definition, role: &str, with_optional: bool) -> Value {
    let mut ctx = sample_context_in(def, role, with_optional, Locale::De);
    ctx["data"] = Value::Object(def.sample_data(with_optional));
    ctx["locale"] = Value::String("en".into());
    ctx
}

/// [`sample_context`] with sample texts in `locale`'s language.
pub fn sample_context_in(
    def: &Definition,
    role: &str,
    with_optional: bool,
    locale: Locale,
) -> Value {
    let recipient = match locale {
        Locale::De => "kunde@contoso.example",
        Locale::En => "customer@contoso.example",
    };
    serde_json::json!({
        "partner": {
            "name": "Contoso Partner GmbH",
            "legal_name": "Contoso Partner GmbH",
            "email": "partner@contoso-partner.example",
            "phone": "+49 30 1234567",
            "website": "https://contoso-partner.example",
            "provider_name": "Contoso Cloud",
        },
        "recipient": { "email": recipient, "role": role },
        "instance": { "id": "in_sample", "workflow": def.name, "state": def.initial, "event": "sample" },
        "data": def.sample_data_in(with_optional, locale),
        "locale": locale.as_str(),
    })
}

fn parse_guards(
    cx: &mut Ctx,
    g: &Spanned<toml::Value>,
    data: &BTreeMap<String, FieldSpec>,
) -> Vec<Guard> {
    let items: Vec<&toml::Value> = match g.get_ref() {
        toml::Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let mut out = Vec::new();
    for item in items {
        let Some(t) = item.as_table() else {
            cx.err(
                g.span(),
                "a guard is a table like { field = \"role\", equal = \"limited\" }",
            );
            continue;
        };
        let Some(field) = t.get("field").and_then(|v| v.as_str()) else {
            cx.err(g.span(), "a guard needs `field`");
            continue;
        };
        if !data.contains_key(field) {
            cx.err(g.span(), format!("guard: unknown data field `{field}`"));
            continue;
        }
        let ops: Vec<&String> = t.keys().filter(|k| *k != "field").collect();
        if ops.len() != 1 {
            cx.err(
                g.span(),
                "a guard needs exactly one of equal, not_equal, present, absent",
            );
            continue;
        }
        let val = |v: &toml::Value| serde_json::to_value(v).unwrap_or(Value::Null);
        let f = field.to_string();
        match (ops[0].as_str(), &t[ops[0].as_str()]) {
            ("equal", v) => out.push(Guard::Equal(f, val(v))),
            ("not_equal", v) => out.push(Guard::NotEqual(f, val(v))),
            ("present", toml::Value::Boolean(true)) => out.push(Guard::Present(f)),
            ("absent", toml::Value::Boolean(true)) => out.push(Guard::Absent(f)),
            (op, _) => cx.err(g.span(), format!("guard: unknown operator `{op}`")),
        }
    }
    out
}

fn parse_effect(
    cx: &mut Ctx,
    e: &Spanned<RawEffect>,
    events: &[String],
    data: &BTreeMap<String, FieldSpec>,
    roles: &BTreeMap<String, String>,
    durations: &BTreeMap<String, Span>,
) -> Option<EffectSpec> {
    let span = e.span();
    let r = e.get_ref();
    let kinds = [
        r.send_email.is_some(),
        r.schedule_timer.is_some(),
        r.cancel_timer.is_some(),
        r.set_time.is_some(),
        r.extend.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        cx.err(span, "an effect has exactly one of send_email, schedule_timer, cancel_timer, set_time, extend");
        return None;
    }
    let duration = |cx: &mut Ctx, s: &str| -> Option<Span> {
        if let Some(d) = durations.get(s) {
            return Some(*d);
        }
        match s.parse::<Span>() {
            Ok(d) => Some(d),
            Err(_) => {
                cx.err(
                    span.clone(),
                    format!("`{s}` is neither a declared duration nor a duration like 30d"),
                );
                None
            }
        }
    };
    let time_field = |cx: &mut Ctx, f: &str| -> bool {
        match data.get(f) {
            Some(spec) if spec.ty == FieldType::Datetime => true,
            Some(_) => {
                cx.err(span.clone(), format!("data field `{f}` is not a datetime"));
                false
            }
            None => {
                cx.err(span.clone(), format!("unknown data field `{f}`"));
                false
            }
        }
    };
    if let Some(template) = &r.send_email {
        let Some(to) = &r.to else {
            cx.err(span, "send_email needs `to` (a recipient role)");
            return None;
        };
        if to != PARTNER_ROLE && !roles.contains_key(to) {
            cx.err(
                span,
                format!("unknown recipient role `{to}` (declare it in [roles])"),
            );
            return None;
        }
        return Some(EffectSpec::SendEmail {
            template: template.clone(),
            to: to.clone(),
        });
    }
    if let Some(name) = &r.schedule_timer {
        let Some(event) = &r.event else {
            cx.err(span, "schedule_timer needs `event`");
            return None;
        };
        if !events.contains(event) {
            cx.err(span.clone(), format!("unknown event `{event}`"));
        }
        let when = match (&r.after, &r.at) {
            (Some(a), None) => TimerWhen::After(duration(cx, a)?),
            (None, Some(f)) => {
                if !time_field(cx, f) {
                    return None;
                }
                let offset = match &r.offset {
                    Some(o) => match o.parse::<Span>() {
                        Ok(s) => s,
                        Err(msg) => {
                            cx.err(span, format!("offset: {msg}"));
                            return None;
                        }
                    },
                    None => Span(0),
                };
                TimerWhen::At {
                    field: f.clone(),
                    offset,
                }
            }
            _ => {
                cx.err(span, "schedule_timer needs exactly one of `after` or `at`");
                return None;
            }
        };
        return Some(EffectSpec::ScheduleTimer {
            name: name.clone(),
            when,
            event: event.clone(),
        });
    }
    if let Some(name) = &r.cancel_timer {
        return Some(EffectSpec::CancelTimer { name: name.clone() });
    }
    if let Some(field) = &r.set_time {
        let Some(after) = &r.after else {
            cx.err(span, "set_time needs `after`");
            return None;
        };
        let after = duration(cx, after)?;
        return time_field(cx, field).then(|| EffectSpec::SetTime {
            field: field.clone(),
            after,
        });
    }
    if let Some(field) = &r.extend {
        let Some(by) = &r.by else {
            cx.err(span, "extend needs `by`");
            return None;
        };
        let by = duration(cx, by)?;
        return time_field(cx, field).then(|| EffectSpec::Extend {
            field: field.clone(),
            by,
        });
    }
    None
}

// ---------------------------------------------------------------------------------------
// Graphs

fn effect_label(e: &EffectSpec) -> String {
    match e {
        EffectSpec::SendEmail { template, to } => format!("✉ {template} → {to}"),
        EffectSpec::ScheduleTimer {
            name,
            when: TimerWhen::After(d),
            ..
        } => format!("⏱ {name} +{d}"),
        EffectSpec::ScheduleTimer {
            name,
            when: TimerWhen::At { field, offset },
            ..
        } => {
            format!(
                "⏱ {name} @{field}{}",
                if offset.0 == 0 {
                    String::new()
                } else {
                    offset.to_string()
                }
            )
        }
        EffectSpec::CancelTimer { name } => format!("✕ {name}"),
        EffectSpec::SetTime { field, after } => format!("{field} = now+{after}"),
        EffectSpec::Extend { field, by } => format!("{field} += {by}"),
    }
}

fn guard_label(g: &Guard) -> String {
    match g {
        Guard::Equal(f, v) => format!("{f} == {v}"),
        Guard::NotEqual(f, v) => format!("{f} != {v}"),
        Guard::Present(f) => format!("{f} set"),
        Guard::Absent(f) => format!("{f} unset"),
    }
}

fn edge_label(t: &Transition) -> String {
    let mut s = t.event.clone();
    if !t.guards.is_empty() {
        let g: Vec<String> = t.guards.iter().map(guard_label).collect();
        s.push_str(&format!(" [{}]", g.join(" && ")));
    }
    s
}

/// A Mermaid `stateDiagram-v2` of the lifecycle.
pub fn to_mermaid(def: &Definition) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str(&format!("    [*] --> {}\n", def.initial));
    for t in &def.transitions {
        for f in &t.from {
            let mut label = edge_label(t).replace(':', "∶");
            for e in &t.effects {
                label.push_str("<br/>");
                label.push_str(&effect_label(e).replace(':', "∶"));
            }
            out.push_str(&format!("    {f} --> {}: {label}\n", t.to));
        }
    }
    for f in &def.finals {
        out.push_str(&format!("    {f} --> [*]\n"));
    }
    out
}

/// A Graphviz DOT digraph of the lifecycle.
pub fn to_dot(def: &Definition) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box, style=rounded];\n",
        esc(&def.name)
    );
    out.push_str("    __start [shape=point];\n");
    for s in &def.states {
        let shape = if def.is_final(s) {
            ", peripheries=2"
        } else {
            ""
        };
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\"{shape}];\n",
            esc(s),
            esc(s)
        ));
    }
    out.push_str(&format!("    __start -> \"{}\";\n", esc(&def.initial)));
    for t in &def.transitions {
        let mut label = edge_label(t);
        for e in &t.effects {
            label.push_str("\\n");
            label.push_str(&esc(&effect_label(e)));
        }
        for f in &t.from {
            out.push_str(&format!(
                "    \"{}\" -> \"{}\" [label=\"{}\"];\n",
                esc(f),
                esc(&t.to),
                label.replace('"', "\\\"")
            ));
        }
    }
    out.push_str("}\n");
    out
}
