//! The pure core: shipped workflows walked through every transition, random event
//! sequences, the compile-error corpus, and every template × locale against snapshots.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use partnerflow::core::domain::{Locale, Span, Timestamp};
use partnerflow::core::workflow::{
    self, Definition, Effect, Guard, StepError, compile, compile_dir,
};
use partnerflow::email::Templates;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn templates() -> Templates {
    Templates::load(&common::manifest("email-templates")).unwrap()
}

fn shipped() -> BTreeMap<String, Definition> {
    compile_dir(
        &common::manifest("workflows"),
        &BTreeMap::new(),
        &templates(),
    )
    .unwrap()
}

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-01T09:00:00Z").unwrap()
}

/// Data under which `def.transitions[i]` is the one `step` picks.
fn data_for(def: &Definition, i: usize) -> Map<String, Value> {
    let mut data = def.sample_data(true);
    let t = &def.transitions[i];
    let mut set = |g: &Guard, hold: bool| match (g, hold) {
        (Guard::Equal(f, v), true) | (Guard::NotEqual(f, v), false) => {
            data.insert(f.clone(), v.clone());
        }
        (Guard::Equal(f, v), false) | (Guard::NotEqual(f, v), true) => {
            let other = match v {
                Value::Bool(b) => Value::Bool(!b),
                Value::String(s) => def.data[f]
                    .values
                    .as_ref()
                    .and_then(|vals| vals.iter().find(|x| *x != s).cloned())
                    .map(Value::String)
                    .unwrap_or(Value::String(format!("not {s}"))),
                _ => Value::Null,
            };
            data.insert(f.clone(), other);
        }
        (Guard::Present(f), false) | (Guard::Absent(f), true) => {
            data.insert(f.clone(), Value::Null);
        }
        _ => {}
    };
    // Earlier transitions for the same state and event must not match: break their first guard.
    for earlier in &def.transitions[..i] {
        if earlier.event == t.event
            && earlier.from.iter().any(|f| t.from.contains(f))
            && let Some(g) = earlier.guards.first()
        {
            set(g, false);
        }
    }
    for g in &t.guards {
        set(g, true);
    }
    data
}

#[test]
fn every_transition_of_every_shipped_workflow() {
    let defs = shipped();
    assert_eq!(
        defs.keys().collect::<Vec<_>>(),
        [
            "acceptance",
            "admin_offer",
            "delegated_admin",
            "location_notice",
            "offer",
            "portal_signin",
            "purchase_offer",
            "reseller_partnership",
            "trial_invitation"
        ]
    );
    let mut walked = 0;
    for def in defs.values() {
        for (i, t) in def.transitions.iter().enumerate() {
            let data = data_for(def, i);
            for from in &t.from {
                let d = workflow::step(def, from, &data, &t.event, now()).unwrap_or_else(|e| {
                    panic!(
                        "{}:{}: {from} --{}--> {}: {e}",
                        def.file.display(),
                        t.line,
                        t.event,
                        t.to
                    )
                });
                assert_eq!(d.to, t.to, "{}:{}", def.file.display(), t.line);
                assert_eq!(&d.from, from);
                let emails = d
                    .effects
                    .iter()
                    .filter(|e| matches!(e, Effect::SendEmail { .. }))
                    .count();
                let declared = t
                    .effects
                    .iter()
                    .filter(|e| matches!(e, workflow::EffectSpec::SendEmail { .. }))
                    .count();
                assert_eq!(emails, declared);
                assert_eq!(
                    d.effects.contains(&Effect::CancelAllTimers),
                    def.is_final(&t.to)
                );
                walked += 1;
            }
        }
    }
    assert_eq!(
        walked, 64,
        "transitions (× from-states) in the shipped workflows"
    );
}

#[test]
fn trial_invitation_effects() {
    let defs = shipped();
    let def = &defs["trial_invitation"];
    // A standalone invitation (no expires_at) runs 30 days from sending.
    let mut standalone = def.sample_data(true);
    standalone.insert("expires_at".into(), Value::Null);
    let d = workflow::step(def, "created", &standalone, "send", now()).unwrap();
    assert_eq!(d.to, "invited");
    assert!(d.effects.contains(&Effect::SendEmail {
        template: "trial_invitation".into(),
        role: "customer".into()
    }));
    assert!(d.effects.contains(&Effect::ScheduleTimer {
        name: "expiry".into(),
        at: now().plus(Span(30 * 86_400_000)),
        event: "expire".into()
    }));
    // An invitation of an offer ends with the offer, and expires silently (the offer tells
    // the partner once).
    let mut bound = def.sample_data(true);
    bound.insert("expires_at".into(), json!("2026-12-24T00:00:00Z"));
    let d = workflow::step(def, "created", &bound, "send", now()).unwrap();
    assert!(d.effects.contains(&Effect::ScheduleTimer {
        name: "expiry".into(),
        at: Timestamp::parse_rfc3339("2026-12-24T00:00:00Z").unwrap(),
        event: "expire".into()
    }));
    let d = workflow::step(def, "invited", &bound, "expire", now()).unwrap();
    assert_eq!(d.to, "expired");
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::SendEmail { .. }))
    );
    let d = workflow::step(def, "invited", &standalone, "expire", now()).unwrap();
    assert!(d.effects.contains(&Effect::SendEmail {
        template: "offer_expired".into(),
        role: "partner".into()
    }));
    let e = workflow::step(def, "accepted", &def.sample_data(true), "expire", now()).unwrap_err();
    assert!(matches!(e, StepError::Final { .. }));
    let e = workflow::step(def, "invited", &def.sample_data(true), "nonsense", now()).unwrap_err();
    assert!(matches!(e, StepError::UnknownEvent { .. }));
}

#[test]
fn delegated_admin_timers_follow_the_end_date() {
    let defs = shipped();
    let def = &defs["delegated_admin"];
    let mut data = def.sample_data(true);
    data.insert("role".into(), Value::String("full".into()));
    let d = workflow::step(def, "approval_pending", &data, "approve", now()).unwrap();
    let ends = Timestamp::parse_rfc3339(d.data["ends_at"].as_str().unwrap()).unwrap();
    assert_eq!(ends, now().plus(Span(730 * 86_400_000)));
    for (name, days) in [
        ("reminder_30", 30),
        ("reminder_7", 7),
        ("reminder_1", 1),
        ("end", 0),
    ] {
        let at = ends.plus(Span(-days * 86_400_000));
        assert!(
            d.effects.iter().any(|e| matches!(e, Effect::ScheduleTimer { name: n, at: a, .. } if n == name && *a == at)),
            "{name} at {at}: {:?}",
            d.effects
        );
    }
    // full admin never auto-extends
    let mut full = d.data.clone();
    full.insert("auto_extend".into(), Value::Bool(true));
    assert_eq!(
        workflow::step(def, "expiring", &full, "expire", ends)
            .unwrap()
            .to,
        "expired"
    );
    let mut limited = full.clone();
    limited.insert("role".into(), Value::String("limited".into()));
    let ext = workflow::step(def, "expiring", &limited, "expire", ends).unwrap();
    assert_eq!(ext.to, "active");
    assert_eq!(
        ext.data["ends_at"].as_str().unwrap(),
        ends.plus(Span(180 * 86_400_000)).to_rfc3339()
    );
}

fn arb_walk() -> impl Strategy<Value = (usize, Vec<(usize, i64)>)> {
    (
        0usize..4,
        proptest::collection::vec((0usize..12, 0i64..40 * 86_400_000), 1..40),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn random_events_stay_declared_and_finals_stay_final((wf, events) in arb_walk()) {
        let defs = shipped_cached();
        let def = defs.values().nth(wf).unwrap();
        let mut state = def.initial.clone();
        let mut data = def.sample_data(true);
        let mut t = now();
        for (ev, dt) in events {
            t = t.plus(Span(dt));
            let event = def.events.get(ev).cloned().unwrap_or_else(|| "undeclared".into());
            let was_final = def.is_final(&state);
            match workflow::step(def, &state, &data, &event, t) {
                Ok(d) => {
                    prop_assert!(!was_final, "left final state {state} by {event}");
                    prop_assert!(def.states.contains(&d.to), "undeclared state {}", d.to);
                    state = d.to;
                    data = d.data;
                }
                Err(StepError::Final { .. }) => prop_assert!(was_final),
                Err(StepError::UnknownEvent { .. }) => prop_assert!(!def.events.contains(&event)),
                Err(StepError::NotAllowed { .. }) => prop_assert!(!was_final),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}

fn shipped_cached() -> &'static BTreeMap<String, Definition> {
    static DEFS: std::sync::OnceLock<BTreeMap<String, Definition>> = std::sync::OnceLock::new();
    DEFS.get_or_init(shipped)
}

#[test]
fn compile_error_corpus() {
    let t = templates();
    let dir = common::manifest("tests/workflow_errors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 12);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks # expect:", path.display()));
        let (line, fragment) = expect.split_once(": ").unwrap();
        let errors = compile(&path, &text, &BTreeMap::new(), &t)
            .expect_err(&format!("{} compiled", path.display()));
        let want = format!("{}:{line}: {fragment}", path.display());
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().starts_with(want.trim_end())),
            "{}: want `{want}`, got:\n{}",
            path.display(),
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn config_duration_override_must_name_a_declared_duration() {
    let mut ov = BTreeMap::new();
    ov.insert(
        "trial_invitation".to_string(),
        BTreeMap::from([("expiree".to_string(), Span(1000))]),
    );
    let errs = compile_dir(&common::manifest("workflows"), &ov, &templates()).unwrap_err();
    assert!(
        errs.iter().any(|e| e.message.contains("`expiree`")),
        "{errs:?}"
    );
}

/// Every template × locale, rendered with the sample context of a workflow that sends it,
/// compared with `tests/snapshots/`. `UPDATE_SNAPSHOTS=1` rewrites them (review the diff).
#[test]
fn templates_match_snapshots() {
    let t = templates();
    let defs = shipped();
    let mut seen = std::collections::BTreeSet::new();
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok();
    let mut mismatches = Vec::new();
    for def in defs.values() {
        for (template, role) in def.templates() {
            if !seen.insert(template.to_string()) {
                continue;
            }
            for locale in Locale::ALL {
                let ctx = workflow::sample_context(def, role, true);
                let r = t.render(template, locale, &ctx).unwrap();
                let got = format!(
                    "Subject: {}\n\n{}\n\n=== html ===\n{}\n",
                    r.subject,
                    r.text.trim_end(),
                    r.html.trim_end()
                );
                let path = common::manifest(&format!("tests/snapshots/{locale}/{template}.snap"));
                if update {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &got).unwrap();
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(want) if want == got => {}
                    Ok(_) => mismatches.push(format!("{} differs", path.display())),
                    Err(_) => mismatches.push(format!("{} missing", path.display())),
                }
                assert!(!r.subject.contains('\n'));
                assert!(
                    r.html.contains(&format!("lang=\"{locale}\"")),
                    "{template}/{locale}: html lang"
                );
            }
        }
    }
    assert_eq!(
        seen.len(),
        t.names().len(),
        "every template is used by a workflow"
    );
    assert!(
        mismatches.is_empty(),
        "{}\n(run with UPDATE_SNAPSHOTS=1 and review)",
        mismatches.join("\n")
    );
}

#[test]
fn html_escapes_and_text_does_not() {
    let t = templates();
    let defs = shipped();
    let mut ctx = workflow::sample_context(&defs["trial_invitation"], "customer", true);
    ctx["data"]["customer_name"] = Value::String("<script>alert(1)</script> & Söhne".into());
    let r = t.render("trial_invitation", Locale::De, &ctx).unwrap();
    assert!(!r.html.contains("<script>"));
    assert!(r.html.contains("&lt;script&gt;"));
    assert!(r.text.contains("<script>alert(1)</script> & Söhne"));
}

#[test]
fn a_broken_template_fails_at_load_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&common::manifest("email-templates"), dir.path());
    std::fs::write(
        dir.path().join("de/offer_expired.txt.hbs"),
        "Hallo\n{{#if data.x}}\nkein Ende\n",
    )
    .unwrap();
    let e = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("de/offer_expired.txt.hbs:"), "{e}");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
