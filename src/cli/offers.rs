//! The CLI's mirror of the partner API: offers, invitations, locations, catalog, customers,
//! tokens, sign-ups and resellers. Parsing is shared with `web` (one parser per input).

use serde_json::json;

use crate::app::AppState;
use std::path::PathBuf;

use clap::Subcommand;

use super::output::{CliError, or_dash, print_history, print_json};
use crate::core::domain::{
    AdminRole, Country, DomainName, EmailAddress, InstanceId, Locale, MpnId, OfferId, OfferKind,
    ProductId, Role, Timestamp,
};
use crate::core::offer::OfferTracking;
use crate::offers::{self, ResellerTarget};

const ACTOR: &str = "cli";

fn other(m: impl Into<String>) -> CliError {
    CliError::Other(m.into())
}

pub(crate) async fn dispatch(cmd: OffersCommand, rt: &AppState) -> Result<(), CliError> {
    match cmd {
        OffersCommand::Offer { command } => offer(command, rt).await,
        OffersCommand::Invite {
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
                    crate::core::domain::parse_name(&n, 200)
                        .map_err(|m| other(format!("--name {m}")))
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
        OffersCommand::Locations { command } => match command {
            LocationsCmd::List { json } => {
                let locs = offers::locations(rt).await?;
                if json {
                    print_json(&json!(locs));
                } else if locs.is_empty() {
                    println!("no synced locations: run `partnerflow locations sync`");
                } else {
                    for v in locs {
                        let l = &v.location;
                        println!(
                            "{:<16} {:<32} {}  partner {:<10} since {}",
                            l.id, l.name, l.country, l.partner_id, v.first_seen_at
                        );
                    }
                }
                Ok(())
            }
            LocationsCmd::Sync => {
                let s = crate::offers::tasks::location_sync(rt)
                    .await
                    .map_err(other)?;
                println!("{s}");
                Ok(())
            }
        },
        OffersCommand::Catalog {
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
                            crate::core::catalog::ProductKind::Trial => "trial",
                            crate::core::catalog::ProductKind::Paid => "paid",
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
        OffersCommand::Customers {
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
        OffersCommand::Tokens { command } => match command {
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
                let list = offers::tokens(rt).await?;
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
                if offers::revoke_token(rt, &id).await? {
                    println!("token {id} revoked");
                    Ok(())
                } else {
                    Err(other(format!("no active token `{id}`")))
                }
            }
        },
        OffersCommand::Signups {
            command: SignupsCmd::Import { file },
        } => signups_import(rt, &file).await,
        OffersCommand::Resellers { command } => resellers(command, rt).await,
    }
}

async fn offer(cmd: OfferCmd, rt: &AppState) -> Result<(), CliError> {
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
            // Each flag parsed into the service's typed request, naming the flag it came from.
            fn flag(name: &'static str) -> impl Fn(String) -> CliError {
                move |m| other(format!("--{name}: {m}"))
            }
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
                lines.push(offers::LineRequest {
                    product: ProductId::parse(id)
                        .map_err(|m| other(format!("--product {p}: {m}")))?,
                    licences: n,
                });
            }
            let n = offers::NewOffer {
                kind: OfferKind::parse(&kind).map_err(flag("kind"))?,
                location_id: offers::parse_location_id(&location).map_err(flag("location"))?,
                country: Country::parse(&country).map_err(flag("country"))?,
                products: lines,
                delegated_admin: match delegated_admin.as_deref() {
                    None | Some("none") => None,
                    Some(r) => Some(AdminRole::parse(r).map_err(flag("delegated-admin"))?),
                },
                auto_extend,
                expires_at: expires_at
                    .as_deref()
                    .map(Timestamp::parse_rfc3339)
                    .transpose()
                    .map_err(flag("expires-at"))?,
                message: message
                    .as_deref()
                    .map(offers::parse_message)
                    .transpose()
                    .map_err(flag("message"))?,
            };
            let o = offers::create(rt, n, ACTOR).await?;
            if json {
                print_json(&json!(offers::tracking(rt, &o.offer.offer_id).await?));
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
                print_json(&json!(v));
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
            let limit = limit.to_string();
            let f = offers::parse_filter(|k| match k {
                "state" => state.as_deref(),
                "kind" => kind.as_deref(),
                "location" => location.as_deref(),
                "created_from" => created_from.as_deref(),
                "created_to" => created_to.as_deref(),
                "limit" => Some(limit.as_str()),
                _ => None,
            })
            .map_err(|e| other(format!("--{}: {}", e.field.replace('_', "-"), e.message)))?;
            let list = offers::list(rt, &f).await?;
            if json {
                print_json(&json!({ "offers": list, "next": offers::next_page(&list, f.limit) }));
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

/// The human view of `offer show`.
fn print_tracking(v: &OfferTracking) {
    let (o, offer) = (&v.offer, &v.offer.offer);
    println!(
        "offer {}  {}  state {}",
        offer.offer_id, offer.kind, o.state
    );
    println!(
        "  location {} ({})  country {}",
        offer.location_id,
        or_dash(v.location.as_ref().map(|l| &l.name)),
        offer.country
    );
    println!(
        "  created {} by {}  expires {}",
        offer.created_at, offer.created_by, offer.expires_at
    );
    println!("  link {}", offer.link);
    for p in &offer.products {
        match p.licences {
            Some(n) => println!("  product {} ({}) × {}", p.id, p.name, n),
            None => println!("  product {} ({})", p.id, p.name),
        }
    }
    if let Some(r) = offer.delegated_admin {
        println!("  delegated admin offered: {}", r.as_str());
    }
    println!("invitations ({}):", v.invitations.len());
    for i in &v.invitations {
        let delivery: Vec<String> = i
            .emails
            .iter()
            .map(|e| match e.sent_at {
                Some(at) => format!("{} {} {at}", e.template, e.state),
                None => format!("{} {}", e.template, e.state),
            })
            .collect();
        let inv = &i.invitation;
        println!(
            "  {}  to {} ({})  {}  sent {}  [{}]",
            inv.instance_id,
            inv.recipient,
            inv.locale,
            i.state,
            inv.created_at,
            delivery.join("; ")
        );
    }
    let unconfirmed = v.unconfirmed_acceptances;
    if unconfirmed > 0 {
        println!(
            "acceptances ({}; {unconfirmed} more waiting for their confirmation link):",
            v.acceptances.len()
        );
    } else {
        println!("acceptances ({}):", v.acceptances.len());
    }
    for a in &v.acceptances {
        let acc = &a.acceptance;
        println!(
            "  {}  {} ({})  admin {}  {}  accepted {}",
            acc.instance_id,
            acc.organisation,
            acc.domain,
            acc.admin_email,
            a.state,
            acc.accepted_at
        );
        for p in &acc.products {
            match p.licences {
                Some(n) => println!("      {} × {}", p.id, n),
                None => println!("      {}", p.id),
            }
        }
        if let Some(r) = &a.relationship {
            println!(
                "      delegated admin {} {} (relationship {}, ends {})",
                or_dash(r.role.as_ref()),
                r.state,
                r.id,
                or_dash(r.ends_at.as_ref())
            );
        }
        if let Some(su) = &a.signup {
            println!(
                "      sign-up completed {} (reported {})",
                su.completed_at, su.received_at
            );
        }
    }
    if !v.unmatched_signups.is_empty() {
        println!(
            "sign-ups matching no acceptance ({}):",
            v.unmatched_signups.len()
        );
        for su in &v.unmatched_signups {
            println!(
                "  {}  completed {}  via {}",
                su.domain, su.completed_at, su.source
            );
        }
    }
    print_history(&v.history, (10, 8, 10));
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

async fn signups_import(rt: &AppState, file: &std::path::Path) -> Result<(), CliError> {
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

async fn resellers(cmd: ResellersCmd, rt: &AppState) -> Result<(), CliError> {
    let mpn = |s: &str| MpnId::parse(s).map_err(|m| other(format!("mpn_id: {m}")));
    match cmd {
        ResellersCmd::Request {
            mpn_id,
            name,
            email,
        } => {
            let name = crate::core::domain::parse_name(&name, 200)
                .map_err(|m| other(format!("--name {m}")))?;
            let email = EmailAddress::parse(&email).map_err(|m| other(format!("--email {m}")))?;
            let r = offers::request_reseller(rt, mpn(&mpn_id)?, name, email, ACTOR).await?;
            println!(
                "partnership request to reseller {} ({}) sent: {}",
                r.reseller.mpn_id, r.reseller.email, r.state
            );
        }
        ResellersCmd::List { json } => {
            let list = offers::resellers(rt).await?;
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

/// The partner API's mirror: offers, invitations, locations, catalog, customers, tokens,
/// sign-ups, resellers.
#[derive(Subcommand, Debug)]
pub(crate) enum OffersCommand {
    /// Offers: create, track by Offer ID, list, withdraw.
    Offer {
        #[command(subcommand)]
        command: OfferCmd,
    },
    /// Send an offer's link to a recipient (an invitation email).
    Invite {
        /// The Offer ID, e.g. PF-7KQ2M9XC4TBD.
        offer_id: String,
        /// The recipient's email address.
        recipient: String,
        /// de or en (default: app.default_locale).
        #[arg(long)]
        locale: Option<String>,
        /// The recipient's name, for the greeting.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Partner locations (synced every 24 hours; only synced ones can be chosen).
    Locations {
        #[command(subcommand)]
        command: LocationsCmd,
    },
    /// The product catalog (config/catalog.toml).
    Catalog {
        #[command(subcommand)]
        command: CatalogCmd,
    },
    /// Customers (who accepted an offer or were invited): search by exact user name or exact
    /// domain.
    Customers {
        #[command(subcommand)]
        command: CustomersCmd,
    },
    /// API tokens for the partner API (stored hashed; the token is shown once).
    Tokens {
        #[command(subcommand)]
        command: TokensCmd,
    },
    /// Completed sign-ups reported by the sign-up system.
    Signups {
        #[command(subcommand)]
        command: SignupsCmd,
    },
    /// Reseller partnerships (indirect provider).
    Resellers {
        #[command(subcommand)]
        command: ResellersCmd,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum OfferCmd {
    /// Create an offer; prints its Offer ID and link.
    ///
    /// Examples:
    ///   partnerflow offer create --kind trial --location loc-berlin --country DE --product m365-business-premium-trial
    ///   partnerflow offer create --kind purchase --location loc-berlin --country DE --product m365-e3:25 --product exchange-online-plan-1:10 --delegated-admin limited
    ///   partnerflow offer create --kind delegated_admin --location loc-berlin --country DE --delegated-admin full
    #[command(verbatim_doc_comment)]
    Create {
        /// trial, purchase or delegated_admin.
        #[arg(long)]
        kind: String,
        /// A synced partner location id (`partnerflow locations list`).
        #[arg(long)]
        location: String,
        /// Usage country, an assigned ISO 3166-1 alpha-2 code (e.g. DE): decides which products
        /// may be offered.
        #[arg(long)]
        country: String,
        /// A catalog product, `ID` for a trial or `ID:LICENCES` for a purchase; repeatable.
        #[arg(long = "product", value_name = "ID[:LICENCES]")]
        products: Vec<String>,
        /// Include delegated administration: full or limited.
        #[arg(long)]
        delegated_admin: Option<String>,
        /// The relationship extends itself by 180 days at its end (limited administration
        /// only; refused for full). The customer sees this before accepting.
        #[arg(long)]
        auto_extend: bool,
        /// RFC 3339 expiry (default per kind: offers.*_expiry).
        #[arg(long)]
        expires_at: Option<String>,
        /// The partner's message to customers, shown in the email and on the page.
        #[arg(long)]
        message: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Track an offer by Offer ID: state, products, link, invitations (delivery), acceptances,
    /// delegated-admin relationships, sign-ups, history.
    Show {
        /// The Offer ID, e.g. PF-7KQ2M9XC4TBD.
        offer_id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List offers, newest first.
    List {
        /// created, open, expired or withdrawn.
        #[arg(long)]
        state: Option<String>,
        /// trial, purchase or delegated_admin.
        #[arg(long)]
        kind: Option<String>,
        /// A location id.
        #[arg(long)]
        location: Option<String>,
        /// Created on or after (2026-11-01 or RFC 3339).
        #[arg(long)]
        created_from: Option<String>,
        /// Created before (2026-12-01 or RFC 3339).
        #[arg(long)]
        created_to: Option<String>,
        /// Show at most this many offers.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an offer: its link stops working (410) and open invitations end.
    Withdraw {
        /// The Offer ID, e.g. PF-7KQ2M9XC4TBD.
        offer_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum LocationsCmd {
    /// The synced locations.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sync now from schedules.location_sync.source.
    Sync,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CatalogCmd {
    /// Products, optionally only those sold in a country.
    List {
        /// Only products sold in this usage country (ISO 3166-1 alpha-2, e.g. DE).
        #[arg(long)]
        country: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CustomersCmd {
    /// By exact user name (person@contoso.com) or exact domain (contoso.com); no wildcards.
    /// Finds customers who accepted an offer and those the partner invited (marked
    /// `invited`), with their acceptances, invitations and resellers.
    Search {
        /// An exact user name (person@contoso.com) or an exact domain (contoso.com).
        query: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokensCmd {
    /// Create a token; it is printed once (only a hash is stored).
    Create {
        /// Who or what uses it, e.g. "crm-sync".
        #[arg(long)]
        name: String,
        /// admin, sales_agent (create offers, send invitations, read), viewer (read),
        /// signups (only POST /api/v1/signups, for the sign-up system's webhook), bounces (only
        /// POST /api/v1/bounces, the mail system's) or metrics (only GET /metrics, for
        /// Prometheus).
        #[arg(long)]
        role: String,
    },
    /// The tokens (never their secrets).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (tXXXXXXXXXX).
    Revoke {
        /// The token id (`partnerflow tokens list`).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum SignupsCmd {
    /// Import completed sign-ups from a CSV file with the header
    /// `advisor_code,customer_domain,completed_at` (completed_at RFC 3339). A bad row — among
    /// them one whose advisor code does not verify (forged, or not one of our offers'), or a
    /// line over 4 KiB — is reported with its line and skipped; the others are imported. Exit status 1 if any row
    /// was bad. The reconcile schedule matches them to acceptances (or run
    /// `partnerflow schedules run reconcile`).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ResellersCmd {
    /// Send a partnership request to a reseller (an email with a personal link).
    Request {
        /// The reseller's MPN ID (5 to 10 digits).
        #[arg(long)]
        mpn_id: String,
        /// The reseller's company name, shown in the email and on the page.
        #[arg(long)]
        name: String,
        /// The reseller's email address: where the request goes.
        #[arg(long)]
        email: String,
    },
    /// The reseller partnerships.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Associate an active reseller with a customer domain or an acceptance.
    Associate {
        /// The reseller's MPN ID (its partnership must be active).
        mpn_id: String,
        /// The customer's domain (a customer who accepted an offer).
        #[arg(long, conflicts_with = "acceptance")]
        domain: Option<String>,
        /// An acceptance id (in_…, see `partnerflow offer show`).
        #[arg(long)]
        acceptance: Option<String>,
        /// Make the reseller the customer's support contact.
        #[arg(long)]
        support_contact: bool,
    },
    /// End a partnership; its customers stay.
    Remove {
        /// The reseller's MPN ID.
        mpn_id: String,
    },
}
