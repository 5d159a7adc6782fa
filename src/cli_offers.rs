//! The CLI's mirror of the partner API: offers, invitations, locations, catalog, customers,
//! tokens, sign-ups and resellers. Parsing is shared with `web` (one parser per input).

use serde_json::{Map, Value, json};

use crate::cli::{
    CatalogCmd, CliError, Command, CustomersCmd, LocationsCmd, OfferCmd, ResellersCmd, SignupsCmd,
    TokensCmd, print_json,
};
use crate::domain::{
    Country, DomainName, EmailAddress, InstanceId, Locale, MpnId, OfferId, Role, Timestamp,
};
use crate::jobs::Runtime;
use crate::offers::{self, ResellerTarget};

const ACTOR: &str = "cli";

fn other(m: impl Into<String>) -> CliError {
    CliError::Other(m.into())
}

pub(crate) async fn run(cmd: Command, rt: &Runtime) -> Result<(), CliError> {
    match cmd {
        Command::Offer { command } => offer(command, rt).await,
        Command::Invite {
            offer_id,
            recipient,
            locale,
            name,
            json,
        } => {
            let id = OfferId::parse(&offer_id).map_err(other)?;
            let to =
                EmailAddress::parse(&recipient).map_err(|m| other(format!("recipient: {m}")))?;
            let locale = locale
                .map(|l| {
                    Locale::parse(&l).ok_or_else(|| other(format!("--locale `{l}`: use de or en")))
                })
                .transpose()?;
            let name = name
                .map(|n| {
                    crate::domain::parse_name(&n, 200).map_err(|m| other(format!("--name {m}")))
                })
                .transpose()?;
            let sent = offers::invite(rt, &id, to, name, locale, ACTOR).await?;
            if json {
                print_json(&json!(sent));
            } else {
                println!(
                    "invitation {} to {} ({}) for offer {}: {}",
                    sent.invitation_id, sent.recipient, sent.locale, sent.offer_id, sent.state
                );
            }
            Ok(())
        }
        Command::Locations { command } => match command {
            LocationsCmd::List { json } => {
                let locs = rt.store.locations().await?;
                if json {
                    print_json(&json!(locs.iter().map(|(l, t)| json!({"id": l.id, "name": l.name, "country": l.country, "partner_id": l.partner_id, "first_seen_at": t})).collect::<Vec<_>>()));
                } else if locs.is_empty() {
                    println!("no synced locations: run `partnerflow locations sync`");
                } else {
                    for (l, t) in locs {
                        println!(
                            "{:<16} {:<32} {}  partner {:<10} since {t}",
                            l.id, l.name, l.country, l.partner_id
                        );
                    }
                }
                Ok(())
            }
            LocationsCmd::Sync => {
                let s = crate::tasks::location_sync(rt).await.map_err(other)?;
                println!("{s}");
                Ok(())
            }
        },
        Command::Catalog {
            command: CatalogCmd::List { country, json },
        } => {
            let products: Vec<_> = match country {
                Some(c) => rt
                    .catalog
                    .in_country(Country::parse(&c).map_err(|m| other(format!("--country {m}")))?),
                None => rt.catalog.all().collect(),
            };
            if json {
                print_json(&json!(products));
            } else {
                println!(
                    "{:<30} {:<5} {:>14} {:<40} countries",
                    "product", "kind", "licences", "name"
                );
                for p in products {
                    let countries: Vec<&str> = p.countries.iter().map(|c| c.as_str()).collect();
                    println!(
                        "{:<30} {:<5} {:>6}..{:<6} {:<40} {}",
                        p.id.as_str(),
                        match p.kind {
                            crate::catalog::ProductKind::Trial => "trial",
                            crate::catalog::ProductKind::Paid => "paid",
                        },
                        p.min_licences,
                        p.max_licences,
                        p.name,
                        countries.join(",")
                    );
                }
            }
            Ok(())
        }
        Command::Customers {
            command: CustomersCmd::Search { query, json },
        } => {
            let found = offers::search_customers(rt, &query).await?;
            if json {
                print_json(&json!(found));
            } else if found.is_empty() {
                println!("no customer with exactly `{query}`");
            } else {
                for c in found {
                    if c.acceptances.is_empty() {
                        println!("{}  invited (no acceptance yet)", c.domain);
                    } else {
                        println!(
                            "{}  {}  admins: {}",
                            c.domain,
                            c.organisation,
                            c.admin_emails.join(", ")
                        );
                    }
                    for a in &c.acceptances {
                        println!(
                            "  offer {}  acceptance {}  {}  accepted {}{}",
                            a.acceptance.offer_id,
                            a.acceptance.instance_id,
                            a.state,
                            a.acceptance.accepted_at,
                            a.relationship
                                .as_ref()
                                .map(|r| format!(
                                    "  delegated admin {} ({})",
                                    r.role.as_deref().unwrap_or("-"),
                                    r.state
                                ))
                                .unwrap_or_default()
                        );
                    }
                    for v in &c.invitations {
                        println!(
                            "  invited {}  offer {}  invitation {}  {}  sent {}",
                            v.invitation.recipient,
                            v.invitation.offer_id,
                            v.invitation.instance_id,
                            v.state,
                            v.invitation.created_at
                        );
                    }
                    for r in &c.resellers {
                        println!(
                            "  reseller {}{}",
                            r.mpn_id,
                            if r.support_contact {
                                " (support contact)".to_string()
                            } else if r.partnership != "active" {
                                format!(" (partnership {})", r.partnership)
                            } else {
                                String::new()
                            }
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Tokens { command } => match command {
            TokensCmd::Create { name, role } => {
                let role = Role::parse(&role).map_err(|m| other(format!("--role {m}")))?;
                let (row, token) = offers::create_token(rt, &name, role).await?;
                eprintln!(
                    "token {} ({}, role {}) created; it is shown only now:",
                    row.id, row.name, row.role
                );
                println!("{token}");
                Ok(())
            }
            TokensCmd::List { json } => {
                let list = rt.store.tokens().await?;
                if json {
                    print_json(&json!(list));
                } else {
                    for t in list {
                        println!(
                            "{:<12} {:<12} {:<24} created {}{}",
                            t.id,
                            t.role,
                            t.name,
                            t.created_at,
                            t.revoked_at
                                .map(|r| format!("  revoked {r}"))
                                .unwrap_or_default()
                        );
                    }
                }
                Ok(())
            }
            TokensCmd::Revoke { id } => {
                if rt.store.revoke_token(id.trim(), rt.clock.now()).await? {
                    println!("token {id} revoked");
                    Ok(())
                } else {
                    Err(other(format!("no active token `{id}`")))
                }
            }
        },
        Command::Signups {
            command: SignupsCmd::Import { file },
        } => signups_import(rt, &file).await,
        Command::Resellers { command } => resellers(command, rt).await,
        _ => Ok(()),
    }
}

async fn offer(cmd: OfferCmd, rt: &Runtime) -> Result<(), CliError> {
    match cmd {
        OfferCmd::Create {
            kind,
            location,
            country,
            products,
            delegated_admin,
            auto_extend,
            expires_at,
            message,
            json,
        } => {
            let mut lines = Vec::new();
            for p in &products {
                let (id, n) = match p.split_once(':') {
                    Some((id, n)) => {
                        let n: i64 = n.trim().parse().map_err(|_| {
                            other(format!(
                                "--product {p}: the licence count after `:` is not a number"
                            ))
                        })?;
                        (id, Some(n))
                    }
                    None => (p.as_str(), None),
                };
                lines.push(json!({ "id": id, "licences": n }));
            }
            let body = json!({
                "kind": kind, "location_id": location, "country": country, "products": lines,
                "delegated_admin": delegated_admin, "auto_extend": auto_extend, "expires_at": expires_at, "message": message,
            });
            let n = crate::web::api::offers::parse_new_offer(body.to_string().as_bytes())?;
            let o = offers::create(rt, n, ACTOR).await?;
            if json {
                print_json(&offers::tracking(rt, &o.offer.offer_id).await?);
            } else {
                println!(
                    "offer {} ({}, {}) created, open until {}",
                    o.offer.offer_id, o.offer.kind, o.state, o.offer.expires_at
                );
                println!("link: {}", o.offer.link);
            }
            Ok(())
        }
        OfferCmd::Show { offer_id, json } => {
            let id = OfferId::parse(&offer_id).map_err(other)?;
            let v = offers::tracking(rt, &id).await?;
            if json {
                print_json(&v);
            } else {
                print_tracking(&v);
            }
            Ok(())
        }
        OfferCmd::List {
            state,
            kind,
            location,
            created_from,
            created_to,
            limit,
            json,
        } => {
            let mut m = Map::new();
            for (k, v) in [
                ("state", state),
                ("kind", kind),
                ("location", location),
                ("created_from", created_from),
                ("created_to", created_to),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), Value::String(v));
                }
            }
            m.insert("limit".into(), Value::String(limit.to_string()));
            let f = crate::web::api::offers::parse_filter(&m)?;
            let list = offers::list(rt, &f).await?;
            if json {
                print_json(&crate::web::api::offers::offers_page_json(&list, f.limit));
            } else {
                for o in list {
                    println!(
                        "{}  {:<15} {:<9} {:<14} {}  created {}  expires {}",
                        o.offer.offer_id,
                        o.offer.kind,
                        o.state,
                        o.offer.location_id,
                        o.offer.country,
                        o.offer.created_at,
                        o.offer.expires_at
                    );
                }
            }
            Ok(())
        }
        OfferCmd::Withdraw { offer_id } => {
            let id = OfferId::parse(&offer_id).map_err(other)?;
            let o = offers::withdraw(rt, &id, ACTOR).await?;
            println!("offer {} is {}", o.offer.offer_id, o.state);
            Ok(())
        }
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

fn t(v: &Value) -> String {
    crate::cli::time_text(v)
}

/// The human view of `offer show`.
fn print_tracking(v: &Value) {
    println!(
        "offer {}  {}  state {}",
        s(&v["offer_id"]),
        s(&v["kind"]),
        s(&v["state"])
    );
    println!(
        "  location {} ({})  country {}",
        s(&v["location_id"]),
        s(&v["location"]["name"]),
        s(&v["country"])
    );
    println!(
        "  created {} by {}  expires {}",
        t(&v["created_at"]),
        s(&v["created_by"]),
        t(&v["expires_at"])
    );
    println!("  link {}", s(&v["link"]));
    for p in v["products"].as_array().into_iter().flatten() {
        match p.get("licences") {
            Some(n) => println!("  product {} ({}) × {}", s(&p["id"]), s(&p["name"]), n),
            None => println!("  product {} ({})", s(&p["id"]), s(&p["name"])),
        }
    }
    if !v["delegated_admin"].is_null() {
        println!("  delegated admin offered: {}", s(&v["delegated_admin"]));
    }
    let invs = v["invitations"].as_array().cloned().unwrap_or_default();
    println!("invitations ({}):", invs.len());
    for i in &invs {
        let delivery: Vec<String> = i["emails"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} {}{}",
                    s(&e["template"]),
                    s(&e["state"]),
                    if e["sent_at"].is_null() {
                        String::new()
                    } else {
                        format!(" {}", t(&e["sent_at"]))
                    }
                )
            })
            .collect();
        println!(
            "  {}  to {} ({})  {}  sent {}  [{}]",
            s(&i["instance_id"]),
            s(&i["recipient"]),
            s(&i["locale"]),
            s(&i["state"]),
            t(&i["created_at"]),
            delivery.join("; ")
        );
    }
    let accs = v["acceptances"].as_array().cloned().unwrap_or_default();
    let unconfirmed = v["unconfirmed_acceptances"].as_i64().unwrap_or(0);
    if unconfirmed > 0 {
        println!(
            "acceptances ({}; {unconfirmed} more waiting for their confirmation link):",
            accs.len()
        );
    } else {
        println!("acceptances ({}):", accs.len());
    }
    for a in &accs {
        println!(
            "  {}  {} ({})  admin {}  {}  accepted {}",
            s(&a["instance_id"]),
            s(&a["organisation"]),
            s(&a["domain"]),
            s(&a["admin_email"]),
            s(&a["state"]),
            t(&a["accepted_at"])
        );
        for p in a["products"].as_array().into_iter().flatten() {
            match p.get("licences") {
                Some(n) => println!("      {} × {}", s(&p["id"]), n),
                None => println!("      {}", s(&p["id"])),
            }
        }
        if let Some(r) = a.get("relationship").filter(|r| !r.is_null()) {
            println!(
                "      delegated admin {} {} (relationship {}, ends {})",
                s(&r["role"]),
                s(&r["state"]),
                s(&r["id"]),
                s(&r["ends_at"])
            );
        }
        if let Some(su) = a.get("signup").filter(|r| !r.is_null()) {
            println!(
                "      sign-up completed {} (reported {})",
                t(&su["completed_at"]),
                t(&su["received_at"])
            );
        }
    }
    let un = v["unmatched_signups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !un.is_empty() {
        println!("sign-ups matching no acceptance ({}):", un.len());
        for su in &un {
            println!(
                "  {}  completed {}  via {}",
                s(&su["domain"]),
                t(&su["completed_at"]),
                s(&su["source"])
            );
        }
    }
    println!("history:");
    for h in v["history"].as_array().into_iter().flatten() {
        println!(
            "  #{:<3} {}  {:<10} {:>8} → {:<10} by {}",
            h["seq"],
            t(&h["at"]),
            s(&h["event"]),
            h["from"].as_str().unwrap_or("·"),
            s(&h["to"]),
            s(&h["actor"])
        );
    }
}

/// One CSV field: trimmed, surrounding quotes removed.
fn unquote(f: &str) -> String {
    let f = f.trim();
    f.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(f)
        .replace("\"\"", "\"")
}

/// Longest line of a sign-ups file, in bytes.
const MAX_SIGNUP_LINE: usize = 4096;

async fn signups_import(rt: &Runtime, file: &std::path::Path) -> Result<(), CliError> {
    let text =
        std::fs::read_to_string(file).map_err(|e| other(format!("{}: {e}", file.display())))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(other(format!("{}: empty file", file.display())));
    };
    let cols: Vec<String> = header.split(',').map(unquote).collect();
    let col = |name: &str| {
        cols.iter().position(|c| c == name).ok_or_else(|| {
            other(format!(
                "{}:1: the header needs `{name}` (have: {})",
                file.display(),
                cols.join(",")
            ))
        })
    };
    let (ci, di, ti) = (
        col("advisor_code")?,
        col("customer_domain")?,
        col("completed_at")?,
    );
    let (mut recorded, mut duplicate, mut bad) = (0usize, 0usize, 0usize);
    for (n, line) in lines {
        let line_no = n + 1;
        // Bounded: an oversized value is neither parsed nor echoed.
        if line.len() > MAX_SIGNUP_LINE {
            eprintln!(
                "{}:{line_no}: the line is {} bytes long, at most {MAX_SIGNUP_LINE}; row skipped",
                file.display(),
                line.len()
            );
            bad += 1;
            continue;
        }
        let f: Vec<String> = line.split(',').map(unquote).collect();
        let get = |i: usize| f.get(i).cloned().unwrap_or_default();
        let row = (|| -> Result<_, String> {
            if f.len() != cols.len() {
                return Err(format!("{} fields, the header has {}", f.len(), cols.len()));
            }
            let domain =
                DomainName::parse(&get(di)).map_err(|m| format!("customer_domain: {m}"))?;
            let at =
                Timestamp::parse_rfc3339(&get(ti)).map_err(|m| format!("completed_at: {m}"))?;
            Ok((get(ci), domain, at))
        })();
        let (code, domain, at) = match row {
            Ok(r) => r,
            Err(m) => {
                eprintln!("{}:{line_no}: {m}; row skipped", file.display());
                bad += 1;
                continue;
            }
        };
        match offers::record_signup(rt, &code, domain, at, "import").await {
            Ok(r) if r.recorded => recorded += 1,
            Ok(_) => duplicate += 1,
            // A code that does not verify (forged, or not ours) is refused with its line.
            Err(offers::OfferError::Invalid { field, message }) => {
                eprintln!(
                    "{}:{line_no}: {field}: {message}; row skipped",
                    file.display()
                );
                bad += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    println!("{recorded} sign-ups recorded, {duplicate} already known, {bad} bad rows skipped");
    if bad > 0 {
        return Err(other(format!(
            "{bad} bad rows in {} (reported above)",
            file.display()
        )));
    }
    Ok(())
}

async fn resellers(cmd: ResellersCmd, rt: &Runtime) -> Result<(), CliError> {
    let mpn = |s: &str| MpnId::parse(s).map_err(|m| other(format!("mpn_id: {m}")));
    match cmd {
        ResellersCmd::Request {
            mpn_id,
            name,
            email,
        } => {
            let name =
                crate::domain::parse_name(&name, 200).map_err(|m| other(format!("--name {m}")))?;
            let email = EmailAddress::parse(&email).map_err(|m| other(format!("--email {m}")))?;
            let r = offers::request_reseller(rt, mpn(&mpn_id)?, name, email, ACTOR).await?;
            println!(
                "partnership request to reseller {} ({}) sent: {}",
                r.reseller.mpn_id, r.reseller.email, r.state
            );
        }
        ResellersCmd::List { json } => {
            let list = rt.store.resellers().await?;
            if json {
                print_json(&json!(list));
            } else {
                for r in list {
                    println!(
                        "{:<10} {:<30} {:<30} {:<13} {} customers",
                        r.reseller.mpn_id,
                        r.reseller.name,
                        r.reseller.email,
                        r.state,
                        r.customers.len()
                    );
                }
            }
        }
        ResellersCmd::Associate {
            mpn_id,
            domain,
            acceptance,
            support_contact,
        } => {
            let target = match (domain, acceptance) {
                (Some(d), None) => ResellerTarget::Customer(
                    DomainName::parse(&d).map_err(|m| other(format!("--domain {m}")))?,
                ),
                (None, Some(a)) => ResellerTarget::Acceptance(
                    InstanceId::parse(&a).map_err(|m| other(format!("--acceptance {m}")))?,
                ),
                _ => return Err(other("give --domain or --acceptance")),
            };
            let r = offers::associate_reseller(rt, &mpn(&mpn_id)?, target, support_contact).await?;
            println!(
                "reseller {} now has {} customers",
                r.reseller.mpn_id,
                r.customers.len()
            );
        }
        ResellersCmd::Remove { mpn_id } => {
            let r = offers::remove_reseller(rt, &mpn(&mpn_id)?, ACTOR).await?;
            println!(
                "reseller {} partnership {}; {} customers kept",
                r.reseller.mpn_id,
                r.state,
                r.customers.len()
            );
        }
    }
    Ok(())
}
