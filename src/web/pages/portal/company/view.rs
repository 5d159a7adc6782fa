//! The company page's view (administrators): the identity's form, the logo's upload and
//! removal, and what the configuration fixes (provider, customer agreement). Its own texts
//! ([`CT`], German and English); the shared ones come from `portal::view::texts`.

use askama::Template;
use askama::filters::Safe;

use crate::core::domain::Locale;
use crate::portal::company::{CompanyInput, LOGO_MAX_BYTES, Problem};

use super::{Nav, PT, render, texts};

type Text = Safe<&'static str>;

pub(crate) struct CT {
    title: Text,
    intro: Text,
    name: Text,
    legal_name: Text,
    email: Text,
    phone: Text,
    website: Text,
    optional: Text,
    save: Text,
    saved: Text,
    logo_title: Text,
    logo_current: Text,
    logo_none: Text,
    logo_file: Text,
    logo_hint: Text,
    upload: Text,
    remove: Text,
    config_title: Text,
    config_hint: Text,
    provider: Text,
    agreement: Text,
}

const DE: CT = CT {
    title: Safe("Firmeninformationen"),
    intro: Safe(
        "So erscheint Ihr Unternehmen auf jeder Kundenseite und in jeder E-Mail. Änderungen gelten sofort (auf weiteren Servern spätestens nach 30 Sekunden).",
    ),
    name: Safe("Name"),
    legal_name: Safe("Rechtlicher Name"),
    email: Safe("E-Mail-Adresse"),
    phone: Safe("Telefon"),
    website: Safe("Website"),
    optional: Safe("(optional)"),
    save: Safe("Speichern"),
    saved: Safe("Gespeichert."),
    logo_title: Safe("Logo"),
    logo_current: Safe("Aktuelles Logo"),
    logo_none: Safe("Kein Logo hinterlegt."),
    logo_file: Safe("Logodatei"),
    logo_hint: Safe("PNG oder JPEG, höchstens 200 KB."),
    upload: Safe("Logo hochladen"),
    remove: Safe("Logo entfernen"),
    config_title: Safe("Aus der Konfiguration"),
    config_hint: Safe(
        "Diese Angaben legt der Betreiber in der Konfiguration fest (partner.provider_name, partner.customer_agreement_url).",
    ),
    provider: Safe("Dienstanbieter"),
    agreement: Safe("Kundenvertrag"),
};

const EN: CT = CT {
    title: Safe("Company information"),
    intro: Safe(
        "This is how your company appears on every customer page and in every email. Changes apply at once (on further servers within 30 seconds).",
    ),
    name: Safe("Name"),
    legal_name: Safe("Legal name"),
    email: Safe("Email address"),
    phone: Safe("Phone"),
    website: Safe("Website"),
    optional: Safe("(optional)"),
    save: Safe("Save"),
    saved: Safe("Saved."),
    logo_title: Safe("Logo"),
    logo_current: Safe("Current logo"),
    logo_none: Safe("No logo yet."),
    logo_file: Safe("Logo file"),
    logo_hint: Safe("PNG or JPEG, at most 200 KB."),
    upload: Safe("Upload logo"),
    remove: Safe("Remove logo"),
    config_title: Safe("From the configuration"),
    config_hint: Safe(
        "The operator sets these in the configuration (partner.provider_name, partner.customer_agreement_url).",
    ),
    provider: Safe("Service provider"),
    agreement: Safe("Customer agreement"),
};

fn ct(l: Locale) -> &'static CT {
    match l {
        Locale::De => &DE,
        Locale::En => &EN,
    }
}

/// A problem in the user's language.
pub(crate) fn problem_text(l: Locale, p: Problem) -> String {
    let de = l == Locale::De;
    match p {
        Problem::Empty if de => "Bitte ausfüllen.".into(),
        Problem::Empty => "Please fill this in.".into(),
        Problem::TooLong(n) if de => format!("Höchstens {n} Zeichen."),
        Problem::TooLong(n) => format!("At most {n} characters."),
        Problem::Control if de => "Bitte ohne Zeilenumbrüche und Steuerzeichen.".into(),
        Problem::Control => "Please leave out line breaks and control characters.".into(),
        Problem::Email if de => "Keine gültige E-Mail-Adresse.".into(),
        Problem::Email => "Not a valid email address.".into(),
        Problem::Phone if de => "Nur Ziffern, Leerzeichen und + - ( ) / . sind erlaubt.".into(),
        Problem::Phone => "Only digits, spaces and + - ( ) / . are allowed.".into(),
        Problem::Url if de => "Eine Adresse mit https:// (oder http://) angeben.".into(),
        Problem::Url => "Give an address starting with https:// (or http://).".into(),
        Problem::NoFile if de => "Bitte eine Datei wählen.".into(),
        Problem::NoFile => "Please choose a file.".into(),
        Problem::LogoType if de => "Nur PNG- oder JPEG-Bilder (kein SVG).".into(),
        Problem::LogoType => "Only PNG or JPEG images (no SVG).".into(),
        Problem::LogoTooLarge if de => format!("Höchstens {} KB.", LOGO_MAX_BYTES / 1024),
        Problem::LogoTooLarge => format!("At most {} KB.", LOGO_MAX_BYTES / 1024),
    }
}

/// The form as typed, its errors (field, message), and the page's other state.
pub(crate) struct CompanyView<'a> {
    pub form: &'a CompanyInput,
    pub errors: Vec<(&'static str, String)>,
    pub saved: bool,
    /// The logo's path (`/partner/logo?v=…`), if there is one.
    pub logo: Option<&'a str>,
    pub provider: &'a str,
    pub agreement: &'a str,
    /// CSRF tokens: save, upload, remove.
    pub csrf: [String; 3],
}

struct Input<'a> {
    id: &'static str,
    label: Text,
    kind: &'static str,
    value: &'a str,
    max: usize,
    required: bool,
    autocomplete: &'static str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/company/company.html")]
struct CompanyPage<'a> {
    t: &'static PT,
    x: &'static CT,
    title: &'static str,
    nav: &'a Nav,
    v: &'a CompanyView<'a>,
    inputs: Vec<Input<'a>>,
    logo_error: Option<&'a str>,
}

pub(crate) fn company_page(l: Locale, nav: &Nav, v: &CompanyView<'_>) -> String {
    let x = ct(l);
    let err = |f: &str| {
        v.errors
            .iter()
            .find(|(k, _)| *k == f)
            .map(|(_, m)| m.as_str())
    };
    let f = v.form;
    let inputs = vec![
        Input {
            id: "name",
            label: Safe(x.name.0),
            kind: "text",
            value: &f.name,
            max: 100,
            required: true,
            autocomplete: "organization",
            error: err("name"),
        },
        Input {
            id: "legal_name",
            label: Safe(x.legal_name.0),
            kind: "text",
            value: &f.legal_name,
            max: 200,
            required: true,
            autocomplete: "off",
            error: err("legal_name"),
        },
        Input {
            id: "email",
            label: Safe(x.email.0),
            kind: "email",
            value: &f.email,
            max: 254,
            required: true,
            autocomplete: "email",
            error: err("email"),
        },
        Input {
            id: "phone",
            label: Safe(x.phone.0),
            kind: "tel",
            value: &f.phone,
            max: 40,
            required: false,
            autocomplete: "tel",
            error: err("phone"),
        },
        Input {
            id: "website",
            label: Safe(x.website.0),
            kind: "url",
            value: &f.website,
            max: 200,
            required: false,
            autocomplete: "url",
            error: err("website"),
        },
    ];
    render(&CompanyPage {
        t: texts(l),
        x,
        title: x.title.0,
        nav,
        v,
        inputs,
        logo_error: err("logo"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_labels_every_field_and_speaks_the_language() {
        let evil = "\"><script>x</script>";
        let u = crate::web::pages::portal::view::test_admin();
        for l in Locale::ALL {
            let nav = Nav::new(l, &u, "company", "t1".into(), "t2".into());
            let form = CompanyInput {
                name: evil.into(),
                legal_name: evil.into(),
                email: evil.into(),
                phone: evil.into(),
                website: evil.into(),
            };
            let v = CompanyView {
                form: &form,
                errors: vec![
                    ("name", evil.into()),
                    ("email", problem_text(l, Problem::Email)),
                    ("logo", problem_text(l, Problem::LogoType)),
                ],
                saved: true,
                logo: Some("/partner/logo?v=2"),
                provider: evil,
                agreement: evil,
                csrf: ["a".into(), "b".into(), "c".into()],
            };
            let html = company_page(l, &nav, &v);
            assert!(!html.contains("<script>"), "{l}");
            assert!(html.contains(&format!("<html lang=\"{l}\">")));
            assert_eq!(html.matches("<h1>").count(), 1);
            assert!(html.contains("aria-current=\"page\""));
            for id in ["name", "legal_name", "email", "phone", "website", "logo"] {
                assert!(
                    html.contains(&format!("<label for=\"company-{id}\">")),
                    "{id}"
                );
            }
            for id in ["name", "email", "logo"] {
                assert!(html.contains(&format!("href=\"#company-{id}\"")), "{id}");
                assert!(
                    html.contains(&format!("aria-describedby=\"company-{id}-error")),
                    "{id}"
                );
            }
            assert_eq!(
                html.matches("method=\"post\"").count(),
                html.matches("name=\"csrf\"").count()
            );
            assert!(html.contains("enctype=\"multipart/form-data\""));
            assert!(html.contains("src=\"/partner/logo?v=2\""));
            let word = if l == Locale::De {
                "Firmeninformationen"
            } else {
                "Company information"
            };
            assert!(html.contains(word), "{l}");
        }
    }
}
