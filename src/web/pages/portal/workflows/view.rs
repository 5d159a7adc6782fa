//! The workflows page's view (administrators): each workflow drawn from the definition the
//! engine runs (`core::diagram`'s layout, drawn as SVG by the template), with how many
//! instances are in each state on the picture and in a table. Own texts ([`WT`]).

use askama::Template;
use askama::filters::Safe;

use crate::core::diagram::Diagram;
use crate::core::domain::Locale;

use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

pub(crate) struct WT {
    title: Text,
    intro: Text,
    legend: Text,
    state: Text,
    instances: Text,
    picture: Text,
}

const DE: WT = WT {
    title: Safe("Abläufe"),
    intro: Safe(
        "Jeder Ablauf so, wie ihn die Maschine ausführt: Zustände, Ereignisse und ihre Wirkungen, mit der Zahl der Vorgänge in jedem Zustand.",
    ),
    legend: Safe(
        "✉ E-Mail · ◷ Frist gesetzt · ⊘ Frist aufgehoben · » Zeit gesetzt oder verlängert · doppelter Rand: Endzustand",
    ),
    state: Safe("Zustand"),
    instances: Safe("Vorgänge"),
    picture: Safe("Zustandsdiagramm"),
};

const EN: WT = WT {
    title: Safe("Workflows"),
    intro: Safe(
        "Each workflow as the engine runs it: states, events and their effects, with how many instances are in each state.",
    ),
    legend: Safe(
        "✉ email · ◷ timer set · ⊘ timer cancelled · » time set or extended · double border: final state",
    ),
    state: Safe("State"),
    instances: Safe("Instances"),
    picture: Safe("State diagram"),
};

fn wt(l: Locale) -> &'static WT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// One workflow as shown: its name, description, layout and counts per state.
pub(crate) struct WorkflowView {
    pub name: String,
    pub description: String,
    pub diagram: Diagram,
    pub counts: Vec<(String, i64)>,
}

impl WorkflowView {
    fn count(&self, state: &str) -> i64 {
        self.counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |c| c.1)
    }
}

#[derive(Template)]
#[template(path = "portal/workflows/workflows.html")]
struct WorkflowsPage<'a> {
    t: &'static PT,
    x: &'static WT,
    title: &'static str,
    nav: &'a Nav,
    workflows: &'a [WorkflowView],
}

pub(crate) fn workflows_page(l: Locale, nav: &Nav, workflows: &[WorkflowView]) -> String {
    let x = wt(l);
    render(&WorkflowsPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        workflows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diagram::{Edge, Node};

    #[test]
    fn the_picture_escapes_names_and_shows_counts() {
        let evil = "\"><script>x</script>";
        let u = crate::web::pages::portal::view::test_admin();
        let node = |name: &str, x: i64| Node {
            name: name.into(),
            x,
            y: 20,
            w: 100,
            h: 40,
            initial: x == 0,
            is_final: x > 0,
        };
        let w = WorkflowView {
            name: evil.into(),
            description: evil.into(),
            diagram: Diagram {
                width: 400,
                height: 120,
                nodes: vec![node("invited", 0), node(evil, 200)],
                edges: vec![Edge {
                    from: "invited".into(),
                    to: evil.into(),
                    label: evil.into(),
                    d: "M 100 40 C 150 40 150 40 200 40".into(),
                    lx: 150,
                    ly: 34,
                }],
            },
            counts: vec![("invited".into(), 12), (evil.into(), 3)],
        };
        for l in Locale::ALL {
            let nav = Nav::new(l, &u, "workflows", "t1".into(), "t2".into());
            let html = workflows_page(l, &nav, std::slice::from_ref(&w));
            crate::web::pages::portal::view::check_page(l, "workflows", &html);
            assert!(html.contains("<svg"), "{l}");
            assert!(html.contains("role=\"img\""));
            assert!(html.contains(">12</text>"), "the count on the picture");
            assert!(
                html.contains("<td class=\"num\">3</td>"),
                "and in the table"
            );
            assert!(html.contains("d=\"M 100 40 C 150 40 150 40 200 40\""));
        }
    }
}
