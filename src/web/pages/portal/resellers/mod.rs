//! `/portal/resellers`: reseller partnerships (indirect provider). Viewers and up see the
//! partnerships a page at a time (`?after=` an MPN ID) and each reseller's page
//! (`/portal/resellers/{mpn}`: state, customers, support contacts). Administrators (as the
//! API's `POST /api/v1/resellers`, `POST …/customers` and `DELETE …/{mpn}` need) request a
//! partnership, associate a customer and end a partnership: CSRF-checked, audited
//! (`reseller.request`, `reseller.associate`, `reseller.end`), errors next to the fields.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::core::domain::{DomainName, EmailAddress, MpnId, Role, parse_name};
use crate::engine::EngineError;
use crate::offers::{self, OfferError, ResellerTarget};
use crate::portal::audit;
use crate::web::pages::{form_pairs, page};

use super::customers::not_found;
use super::query_pairs;
use super::view::Nav;
use super::view::resellers::{self as view, AssociateForm, RequestForm, Writes};
use super::{EVERYWHERE, SIGN_OUT, SignedIn, csrf_tokens, field, see_other, unavailable};

const LIST: &str = "/portal/resellers";
const PAGE: i64 = 50;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(LIST, get(list).post(request))
        .route("/portal/resellers/{mpn}", get(show))
        .route("/portal/resellers/{mpn}/customers", post(associate))
        .route("/portal/resellers/{mpn}/end", post(end))
}

fn associate_path(mpn: &MpnId) -> String {
    format!("{LIST}/{mpn}/customers")
}

fn end_path(mpn: &MpnId) -> String {
    format!("{LIST}/{mpn}/end")
}

fn no_reseller(rt: &AppState, s: &SignedIn) -> Response {
    not_found(rt, s, "resellers", LIST, view::rtexts(s.locale).back.0)
}

/// The list page (a page after `after`), with the request form as given for administrators.
async fn list_page(
    rt: &AppState,
    s: &SignedIn,
    status: StatusCode,
    after: Option<&str>,
    form: &RequestForm,
) -> Response {
    let (status, listed) = match offers::resellers_page(rt, after, PAGE).await {
        Ok(p) => (status, p),
        Err(OfferError::Invalid { .. }) => (
            StatusCode::BAD_REQUEST,
            crate::core::customer::ResellerPage {
                resellers: vec![],
                next: None,
            },
        ),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let ([out, everywhere, request_csrf], set) =
        csrf_tokens(rt, &s.headers, [SIGN_OUT, EVERYWHERE, LIST]);
    let nav = Nav::new(s.locale, &s.session.user, "resellers", out, everywhere);
    let admin = s.session.user.role.allows(Role::Admin);
    page(
        rt,
        status,
        view::list_page(
            s.locale,
            &nav,
            &listed.resellers,
            listed.next.as_deref(),
            form,
            admin.then_some(request_csrf.as_str()),
        ),
        set,
    )
}

async fn list(State(rt): State<Arc<AppState>>, s: SignedIn, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let pairs = query_pairs(q.as_deref());
    let after = field(&pairs, "after").trim();
    list_page(
        &rt,
        &s,
        StatusCode::OK,
        (!after.is_empty()).then_some(after),
        &RequestForm::default(),
    )
    .await
}

/// An administrator requests a partnership: the reseller is mailed its personal link; then a
/// 303 to the reseller's page.
async fn request(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    body: axum::body::Bytes,
) -> Response {
    let f = match s.form(&rt, Role::Admin, &body, LIST) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let x = view::rtexts(s.locale);
    let mut form = RequestForm {
        mpn_id: field(&f, "mpn_id").trim().into(),
        name: field(&f, "name").trim().into(),
        email: field(&f, "email").trim().into(),
        errors: vec![],
    };
    let mpn = MpnId::parse(&form.mpn_id).ok();
    if mpn.is_none() {
        form.errors.push(("mpn_id".into(), x.bad_mpn.0.into()));
    }
    let name = parse_name(&form.name, 200).ok();
    if name.is_none() {
        form.errors.push(("name".into(), x.bad_name.0.into()));
    }
    let email = EmailAddress::parse(&form.email).ok();
    if email.is_none() {
        form.errors.push(("email".into(), x.bad_email.0.into()));
    }
    let (Some(mpn), Some(name), Some(email)) = (mpn, name, email) else {
        return list_page(&rt, &s, StatusCode::BAD_REQUEST, None, &form).await;
    };
    let actor = s.actor();
    match offers::request_reseller(&rt, mpn.clone(), name.clone(), email, &actor.label).await {
        Ok(_) => {
            if let Err(e) =
                audit::record(&rt, &actor, "reseller.request", mpn.as_str(), &name).await
            {
                return unavailable(&rt, s.locale, &e);
            }
            see_other(&format!("{LIST}/{mpn}?done=request"), None)
        }
        Err(OfferError::Conflict(_)) => {
            form.errors.push(("mpn_id".into(), x.exists.0.into()));
            list_page(&rt, &s, StatusCode::CONFLICT, None, &form).await
        }
        Err(OfferError::Invalid { field, message }) => {
            form.errors.push((field, message));
            list_page(&rt, &s, StatusCode::BAD_REQUEST, None, &form).await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// A reseller's page, with the forms as given for administrators.
async fn reseller_page(
    rt: &AppState,
    s: &SignedIn,
    mpn: &MpnId,
    status: StatusCode,
    done: Option<&str>,
    form: &AssociateForm,
    end_error: Option<&str>,
) -> Response {
    let r = match offers::reseller(rt, mpn).await {
        Ok(r) => r,
        Err(OfferError::NotFound(_)) => return no_reseller(rt, s),
        Err(e) => return unavailable(rt, s.locale, &e),
    };
    let (associate_action, end_action) = (associate_path(mpn), end_path(mpn));
    let ([out, everywhere, associate_csrf, end_csrf], set) = csrf_tokens(
        rt,
        &s.headers,
        [SIGN_OUT, EVERYWHERE, &associate_action, &end_action],
    );
    let nav = Nav::new(s.locale, &s.session.user, "resellers", out, everywhere);
    let writes = s.session.user.role.allows(Role::Admin).then_some(Writes {
        associate_action: &associate_action,
        associate_csrf: &associate_csrf,
        end_action: &end_action,
        end_csrf: &end_csrf,
    });
    page(
        rt,
        status,
        view::reseller_page(s.locale, &nav, &r, done, writes, form, end_error),
        set,
    )
}

async fn show(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(mpn): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Viewer) {
        return r;
    }
    let Ok(mpn) = MpnId::parse(&mpn) else {
        return no_reseller(&rt, &s);
    };
    let pairs = query_pairs(q.as_deref());
    let done = view::done_text(s.locale, field(&pairs, "done"));
    reseller_page(
        &rt,
        &s,
        &mpn,
        StatusCode::OK,
        done,
        &AssociateForm::default(),
        None,
    )
    .await
}

/// An administrator associates a customer (by domain or acceptance) with an active reseller,
/// optionally as its support contact; then a 303 back.
async fn associate(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(mpn): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let Ok(mpn) = MpnId::parse(&mpn) else {
        return no_reseller(&rt, &s);
    };
    let f = form_pairs(&body);
    if let Some(r) = s.csrf(&rt, &f, &associate_path(&mpn)) {
        return r;
    }
    let x = view::rtexts(s.locale);
    let mut form = AssociateForm {
        domain: field(&f, "domain").trim().into(),
        acceptance_id: field(&f, "acceptance_id").trim().into(),
        support_contact: matches!(field(&f, "support_contact"), "true" | "on" | "1"),
        errors: vec![],
    };
    let target = match (form.domain.is_empty(), form.acceptance_id.is_empty()) {
        (false, true) => match DomainName::parse(&form.domain) {
            Ok(d) => Some(ResellerTarget::Customer(d)),
            Err(_) => {
                form.errors.push(("domain".into(), x.bad_domain.0.into()));
                None
            }
        },
        (true, false) => match offers::parse_acceptance_id(&form.acceptance_id) {
            Ok(a) => Some(ResellerTarget::Acceptance(a)),
            Err(_) => {
                form.errors
                    .push(("acceptance_id".into(), x.bad_acceptance.0.into()));
                None
            }
        },
        _ => {
            form.errors.push(("domain".into(), x.one_of.0.into()));
            None
        }
    };
    let back = |status, form: AssociateForm| {
        let (rt, s, mpn) = (&rt, &s, &mpn);
        async move { reseller_page(rt, s, mpn, status, None, &form, None).await }
    };
    let Some(target) = target else {
        return back(StatusCode::BAD_REQUEST, form).await;
    };
    let detail = match &target {
        ResellerTarget::Customer(d) => format!("domain {d}"),
        ResellerTarget::Acceptance(a) => format!("acceptance {a}"),
    };
    let by_domain = matches!(target, ResellerTarget::Customer(_));
    match offers::associate_reseller(&rt, &mpn, target, form.support_contact).await {
        Ok(_) => {
            let detail = format!(
                "{detail}; support contact: {}",
                if form.support_contact { "yes" } else { "no" }
            );
            if let Err(e) =
                audit::record(&rt, &s.actor(), "reseller.associate", mpn.as_str(), &detail).await
            {
                return unavailable(&rt, s.locale, &e);
            }
            see_other(&format!("{LIST}/{mpn}?done=associate"), None)
        }
        Err(OfferError::NotFound(what)) if what.starts_with("reseller") => no_reseller(&rt, &s),
        Err(OfferError::NotFound(_)) => {
            if by_domain {
                form.errors.push(("domain".into(), x.no_customer.0.into()));
            } else {
                form.errors
                    .push(("acceptance_id".into(), x.no_acceptance.0.into()));
            }
            back(StatusCode::NOT_FOUND, form).await
        }
        Err(OfferError::Conflict(_)) => {
            form.errors.push(("domain".into(), x.not_active.0.into()));
            back(StatusCode::CONFLICT, form).await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}

/// An administrator ends a partnership (or withdraws a request not yet accepted); the
/// customers stay. Then a 303 back.
async fn end(
    State(rt): State<Arc<AppState>>,
    s: SignedIn,
    Path(mpn): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = s.require(&rt, Role::Admin) {
        return r;
    }
    let Ok(mpn) = MpnId::parse(&mpn) else {
        return no_reseller(&rt, &s);
    };
    let f = form_pairs(&body);
    if let Some(r) = s.csrf(&rt, &f, &end_path(&mpn)) {
        return r;
    }
    let actor = s.actor();
    match offers::remove_reseller(&rt, &mpn, &actor.label).await {
        Ok(r) => {
            if let Err(e) = audit::record(&rt, &actor, "reseller.end", mpn.as_str(), &r.state).await
            {
                return unavailable(&rt, s.locale, &e);
            }
            see_other(&format!("{LIST}/{mpn}?done=end"), None)
        }
        Err(OfferError::NotFound(_)) => no_reseller(&rt, &s),
        Err(OfferError::Conflict(_)) | Err(OfferError::Engine(EngineError::Rejected(_))) => {
            let m = view::rtexts(s.locale).cannot_end.0;
            reseller_page(
                &rt,
                &s,
                &mpn,
                StatusCode::CONFLICT,
                None,
                &AssociateForm::default(),
                Some(m),
            )
            .await
        }
        Err(e) => unavailable(&rt, s.locale, &e),
    }
}
