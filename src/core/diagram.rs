//! A workflow drawn as a picture: the layout of its states and transitions (pure arithmetic;
//! the portal's template draws it as SVG). States are placed in columns by their distance
//! from the initial state (breadth first), in the definition's order within a column; each
//! transition is an arrow from its source to its target, labelled with its event and marked
//! with its effects (✉ an email, ◷ a timer set, ⊘ a timer cancelled, » a time set or extended).

use std::collections::BTreeMap;

use super::workflow::{Definition, EffectSpec};

const NODE_H: i64 = 40;
const ROW: i64 = 76;
const GAP: i64 = 170;
const MARGIN: i64 = 20;

/// A state's box.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
    pub initial: bool,
    pub is_final: bool,
}

/// A transition's arrow: an SVG path (`d`), and where its label goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
    pub d: String,
    pub lx: i64,
    pub ly: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagram {
    pub width: i64,
    pub height: i64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

fn marks(effects: &[EffectSpec]) -> String {
    let mut m = String::new();
    for e in effects {
        m.push_str(match e {
            EffectSpec::SendEmail { .. } => "✉",
            EffectSpec::ScheduleTimer { .. } => "◷",
            EffectSpec::CancelTimer { .. } => "⊘",
            EffectSpec::SetTime { .. } | EffectSpec::Extend { .. } => "»",
        });
    }
    m
}

/// Lays a workflow out (see the module's text).
pub fn layout(d: &Definition) -> Diagram {
    // Columns: breadth-first distance from the initial state; unreachable states last.
    let mut column: BTreeMap<&str, i64> = BTreeMap::new();
    column.insert(d.initial.as_str(), 0);
    let mut frontier = vec![d.initial.as_str()];
    while !frontier.is_empty() {
        let mut next = vec![];
        for s in frontier {
            let c = column[s];
            for t in d
                .transitions
                .iter()
                .filter(|t| t.from.iter().any(|f| f == s))
            {
                if !column.contains_key(t.to.as_str()) {
                    column.insert(t.to.as_str(), c + 1);
                    next.push(t.to.as_str());
                }
            }
        }
        frontier = next;
    }
    let last = column.values().copied().max().unwrap_or(0) + 1;
    let col_of = |s: &str| column.get(s).copied().unwrap_or(last);
    let columns = d.states.iter().map(|s| col_of(s)).max().unwrap_or(0) + 1;
    let width_of = |s: &str| (s.chars().count() as i64 * 8 + 24).max(96);
    let col_w: Vec<i64> = (0..columns)
        .map(|c| {
            d.states
                .iter()
                .filter(|s| col_of(s) == c)
                .map(|s| width_of(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let col_x: Vec<i64> = col_w
        .iter()
        .scan(MARGIN, |x, w| {
            let here = *x;
            *x += w + GAP;
            Some(here)
        })
        .collect();
    let mut rows = vec![0i64; columns as usize];
    let mut nodes = Vec::with_capacity(d.states.len());
    for s in &d.states {
        let c = col_of(s) as usize;
        nodes.push(Node {
            name: s.clone(),
            x: col_x[c],
            y: MARGIN + 20 + rows[c] * ROW,
            w: width_of(s),
            h: NODE_H,
            initial: *s == d.initial,
            is_final: d.finals.contains(s),
        });
        rows[c] += 1;
    }
    // One arrow per (from, to): the events that take it, with their effects.
    let mut labels: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for t in &d.transitions {
        for f in &t.from {
            labels
                .entry((f.clone(), t.to.clone()))
                .or_default()
                .push(format!("{}{}", t.event, marks(&t.effects)));
        }
    }
    let find = |n: &str| nodes.iter().find(|x| x.name == n);
    let mut edges = vec![];
    for ((from, to), events) in labels {
        let (Some(a), Some(b)) = (find(&from), find(&to)) else {
            continue;
        };
        let label = events.join(", ");
        let (ay, by) = (a.y + a.h / 2, b.y + b.h / 2);
        let (d, lx, ly) = if from == to {
            // A loop above the box.
            let (x1, x2, y) = (a.x + a.w / 3, a.x + 2 * a.w / 3, a.y);
            (
                format!("M {x1} {y} C {x1} {} {x2} {} {x2} {y}", y - 30, y - 30),
                a.x + a.w / 2,
                y - 30,
            )
        } else if b.x > a.x {
            // Forward: right side to left side.
            let (x1, x2) = (a.x + a.w, b.x);
            let mid = (x1 + x2) / 2;
            (
                format!("M {x1} {ay} C {mid} {ay} {mid} {by} {x2} {by}"),
                mid,
                (ay + by) / 2 - 6,
            )
        } else if b.x == a.x {
            // Within a column: out to the right and back in.
            let (x1, x2) = (a.x + a.w, b.x + b.w);
            let out = x1.max(x2) + 36;
            (
                format!("M {x1} {ay} C {out} {ay} {out} {by} {x2} {by}"),
                out + 4,
                (ay + by) / 2 + 4,
            )
        } else {
            // Back: under both boxes.
            let (x1, x2) = (a.x + a.w / 2, b.x + b.w / 2);
            let low = a.y.max(b.y) + NODE_H + 34;
            (
                format!(
                    "M {x1} {} C {x1} {low} {x2} {low} {x2} {}",
                    a.y + a.h,
                    b.y + b.h
                ),
                (x1 + x2) / 2,
                low - 4,
            )
        };
        edges.push(Edge {
            from,
            to,
            label,
            d,
            lx,
            ly,
        });
    }
    // Room on the right for the loops out of the last column and their labels.
    let width =
        col_x.last().copied().unwrap_or(MARGIN) + col_w.last().copied().unwrap_or(0) + MARGIN + 80;
    let height = MARGIN + 20 + rows.iter().copied().max().unwrap_or(1) * ROW + 40;
    Diagram {
        width,
        height,
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workflow::{TemplateCheck, compile_dir};

    struct AnyTemplate;
    impl TemplateCheck for AnyTemplate {
        fn check(&self, _: &str, _: &serde_json::Value) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn every_state_and_transition_of_every_workflow_is_drawn_without_overlap() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let defs = compile_dir(&dir, &BTreeMap::new(), &AnyTemplate).unwrap();
        assert!(!defs.is_empty());
        for d in defs.values() {
            let g = layout(d);
            assert_eq!(g.nodes.len(), d.states.len(), "{}", d.name);
            let init = g.nodes.iter().find(|n| n.initial).unwrap();
            assert_eq!(init.name, d.initial);
            assert!(
                g.nodes.iter().all(|n| n.x >= init.x),
                "{}: initial leftmost",
                d.name
            );
            for (i, a) in g.nodes.iter().enumerate() {
                assert!(a.x + a.w <= g.width && a.y + a.h <= g.height, "{}", a.name);
                for b in &g.nodes[i + 1..] {
                    let apart = a.x + a.w <= b.x
                        || b.x + b.w <= a.x
                        || a.y + a.h <= b.y
                        || b.y + b.h <= a.y;
                    assert!(apart, "{}: {} overlaps {}", d.name, a.name, b.name);
                }
            }
            for t in &d.transitions {
                for f in &t.from {
                    let e = g
                        .edges
                        .iter()
                        .find(|e| e.from == *f && e.to == t.to)
                        .unwrap_or_else(|| panic!("{}: {f} → {}", d.name, t.to));
                    assert!(e.label.contains(&t.event), "{}: {}", d.name, t.event);
                }
            }
        }
    }
}
