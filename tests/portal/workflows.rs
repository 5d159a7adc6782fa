//! The portal's workflows page (`/portal/workflows`, administrators only): every workflow the
//! engine runs, drawn as SVG from its definition, with the instances in each state.

use super::*;

async fn workflows_page_draws_every_workflow_with_its_counts(store: Store) {
    let e = env(store, &[]).await;
    let mut admin = e
        .signed_in(&e.user("a@partner.example", "admin").await.1)
        .await;
    let mut sales = e
        .signed_in(&e.user("s@partner.example", "sales_agent").await.1)
        .await;
    let mut viewer = e
        .signed_in(&e.user("v@partner.example", "viewer").await.1)
        .await;
    let mut anon = Browser::new("en");
    let got = [
        status_of(&e, &mut admin, "/portal/workflows").await,
        status_of(&e, &mut sales, "/portal/workflows").await,
        status_of(&e, &mut viewer, "/portal/workflows").await,
        status_of(&e, &mut anon, "/portal/workflows").await,
    ];
    assert_eq!(got, [200, 403, 403, 303]);
    let first = e.app.invite(1).await;
    e.app.invite(2).await;
    e.app.rt.run_due().await.unwrap();
    let p = admin.get(&e.url("/portal/workflows")).await.body;
    for name in e.app.rt.engine.defs.keys() {
        let i = p
            .find(&format!("<section id=\"workflow-{name}\""))
            .unwrap_or_else(|| panic!("{name} missing"));
        let section = &p[i..i + p[i..].find("</section>").unwrap()];
        assert!(
            section.contains("<svg") && section.contains("<path"),
            "{name}"
        );
    }
    let i = p.find("<section id=\"workflow-trial_invitation\"").unwrap();
    let section = &p[i..i + p[i..].find("</section>").unwrap()];
    let state = e.app.state(&first).await;
    assert!(
        section.contains(&format!(
            "<th scope=\"row\">{state}</th><td class=\"num\">2</td>"
        )),
        "two invitations {state}: {section}"
    );
    assert!(section.contains(">2</text>"), "on the picture too");
}

on_both_stores!(workflows_page_draws_every_workflow_with_its_counts);
