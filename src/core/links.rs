//! Signed links: the advisor code in an offer link, the customer's personal pages (remove
//! the partner's admin roles, a reseller's partnership request) and the CSRF tokens of the
//! customer's forms. HMAC-SHA256 with a key id, so keys rotate: every configured key
//! verifies, one signs. Pure: no I/O but loading the key file at start.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

use crate::core::config::LinkSettings;
use crate::core::domain::{OfferId, Span, Timestamp};

/// What a MAC is for: a code for one purpose never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    AdvisorCode,
    RemoveRoles,
    Reseller,
    Csrf,
    /// A campaign recipient's unsubscribe link (subject `{campaign}_{seq}`).
    Unsubscribe,
    /// The single-use link that confirms an acceptance (subject: the acceptance's instance).
    ConfirmAcceptance,
    /// A portal sign-in link's secret, derived from its reference (never stored).
    SigninLink,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::AdvisorCode => "partnerflow/advisor-code/v1",
            Purpose::RemoveRoles => "partnerflow/remove-roles/v1",
            Purpose::Reseller => "partnerflow/reseller-request/v1",
            Purpose::Csrf => "partnerflow/csrf/v1",
            Purpose::Unsubscribe => "partnerflow/unsubscribe/v1",
            Purpose::ConfirmAcceptance => "partnerflow/confirm-acceptance/v1",
            Purpose::SigninLink => "partnerflow/portal-signin/v1",
        }
    }
}

/// Why a code was refused. The customer sees one 404 page for all of them (no oracle);
/// logs and tests tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("malformed code")]
    Malformed,
    #[error("unknown key id `{0}`")]
    UnknownKey(String),
    #[error("signature does not match")]
    BadSignature,
}

struct Key {
    id: String,
    key: hmac::Key,
}

pub struct KeyRing {
    keys: Vec<Key>,
    signing: usize,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>())
            .field("signing", &self.keys[self.signing].id)
            .finish()
    }
}

/// A code's parts: `{kid}.{subject}.{mac}`.
pub struct Parsed<'a> {
    pub kid: &'a str,
    pub subject: &'a str,
    mac: &'a str,
}

const KEY_FILE: &str = "link-keys";

fn valid_kid(k: &str) -> bool {
    !k.is_empty() && k.len() <= 16 && k.bytes().all(|c| c.is_ascii_alphanumeric())
}

impl KeyRing {
    /// Parses `kid:base64url, kid2:…`.
    pub fn parse(spec: &str, signing: &str) -> Result<KeyRing, String> {
        let mut keys: Vec<Key> = Vec::new();
        for item in spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (id, b64) = item
                .split_once(':')
                .ok_or("each key is `kid:base64url-key`")?;
            let id = id.trim();
            if !valid_kid(id) {
                // Not shown: a key pasted in the wrong place would be printed.
                return Err(format!(
                    "key {}: its id (before `:`) must be 1 to 16 letters and digits",
                    keys.len() + 1
                ));
            }
            // The decoder's message would show a character of the key.
            let raw = B64
                .decode(b64.trim().trim_end_matches('='))
                .map_err(|_| format!("key `{id}`: not base64url"))?;
            if raw.len() < 32 {
                return Err(format!("key `{id}`: {} bytes; use at least 32", raw.len()));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("key id `{id}` is given twice"));
            }
            keys.push(Key {
                id: id.to_string(),
                key: hmac::Key::new(hmac::HMAC_SHA256, &raw),
            });
        }
        if keys.is_empty() {
            return Err("no keys".into());
        }
        let signing = if signing.trim().is_empty() {
            0
        } else {
            keys.iter()
                .position(|k| k.id == signing.trim())
                .ok_or_else(|| format!("signing_key `{signing}` is not among the keys"))?
        };
        Ok(KeyRing { keys, signing })
    }

    /// The configured keys, else the key file in `data_dir`, else a new key written there.
    /// Returns a warning to log when a key was generated.
    pub fn load(s: &LinkSettings, data_dir: &Path) -> Result<(KeyRing, Option<String>), String> {
        if !s.keys.is_empty() {
            return KeyRing::parse(s.keys.expose(), &s.signing_key)
                .map(|k| (k, None))
                .map_err(|e| format!("links.keys: {e}"));
        }
        let path: PathBuf = data_dir.join(KEY_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return KeyRing::parse(&text, &s.signing_key)
                .map(|k| (k, None))
                .map_err(|e| format!("{}: {e}", path.display()));
        }
        let spec = generate_spec();
        crate::core::files::private_dir(data_dir)
            .map_err(|e| format!("{}: {e}", data_dir.display()))?;
        write_private(&path, &format!("{spec}\n"))?;
        let ring = KeyRing::parse(&spec, "")?;
        Ok((
            ring,
            Some(format!(
                "links.keys is not set: generated a signing key into {} — keep it (links signed with it stop working without it), and give every host the same keys (PARTNERFLOW__LINKS__KEYS) when several share a database",
                path.display()
            )),
        ))
    }

    pub fn signing_kid(&self) -> &str {
        &self.keys[self.signing].id
    }

    /// The signed message: purpose label, then each part length-prefixed (no ambiguity
    /// between parts).
    fn message(purpose: Purpose, kid: &str, subject: &str, bound: &[&str]) -> Vec<u8> {
        let mut m = purpose.label().as_bytes().to_vec();
        for p in [kid, subject].iter().chain(bound) {
            m.push(0);
            m.extend_from_slice(&(p.len() as u64).to_be_bytes());
            m.extend_from_slice(p.as_bytes());
        }
        m
    }

    /// `{kid}.{subject}.{mac}`, the MAC over `subject` and `bound` (data the verifier looks
    /// up itself, e.g. the offer's location) with the signing key.
    pub fn sign(&self, purpose: Purpose, subject: &str, bound: &[&str]) -> String {
        let k = &self.keys[self.signing];
        let tag = hmac::sign(&k.key, &Self::message(purpose, &k.id, subject, bound));
        format!("{}.{subject}.{}", k.id, B64.encode(tag.as_ref()))
    }

    /// Splits a code without checking it; the subject is untrusted until [`verify`].
    pub fn split(code: &str) -> Result<Parsed<'_>, CodeError> {
        if code.len() > 200 {
            return Err(CodeError::Malformed);
        }
        let mut it = code.splitn(3, '.');
        let (Some(kid), Some(subject), Some(mac)) = (it.next(), it.next(), it.next()) else {
            return Err(CodeError::Malformed);
        };
        if !valid_kid(kid) || subject.is_empty() || mac.len() != 43 {
            return Err(CodeError::Malformed);
        }
        Ok(Parsed { kid, subject, mac })
    }

    /// Checks a split code against `bound`, with the key its id names (constant time).
    pub fn verify(
        &self,
        purpose: Purpose,
        p: &Parsed<'_>,
        bound: &[&str],
    ) -> Result<(), CodeError> {
        let k = self
            .keys
            .iter()
            .find(|k| k.id == p.kid)
            .ok_or_else(|| CodeError::UnknownKey(p.kid.to_string()))?;
        let given = B64.decode(p.mac).map_err(|_| CodeError::Malformed)?;
        let msg = Self::message(purpose, p.kid, p.subject, bound);
        // ring recomputes and compares in constant time.
        hmac::verify(&k.key, &msg, &given).map_err(|_| CodeError::BadSignature)
    }

    /// A secret derived from a reference `{kid}.{subject}` with that key: 32 letters and
    /// digits (≈190 bits), the same on every node that holds the key, so it need not be
    /// stored anywhere (the store keeps its SHA-256; an email renders it when it is sent).
    /// None: malformed reference or unknown key.
    pub fn derived_secret(&self, purpose: Purpose, reference: &str) -> Option<String> {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let (kid, subject) = reference.split_once('.')?;
        let k = self.keys.iter().find(|k| k.id == kid)?;
        if subject.is_empty() || subject.len() > 100 {
            return None;
        }
        let tag = hmac::sign(&k.key, &Self::message(purpose, kid, subject, &[]));
        Some(
            tag.as_ref()
                .iter()
                .map(|b| ALNUM[(*b as usize) % ALNUM.len()] as char)
                .collect(),
        )
    }

    /// A fresh reference for [`derived_secret`](Self::derived_secret): the signing key's id
    /// and a random subject.
    pub fn new_reference(&self, subject: &str) -> String {
        format!("{}.{subject}", self.signing_kid())
    }

    /// The advisor code of an offer: signed over the Offer ID and the partner location.
    pub fn advisor_code(&self, offer: &OfferId, location_id: &str) -> String {
        self.sign(Purpose::AdvisorCode, offer.as_str(), &[location_id])
    }

    /// The CSRF token for a form at `path`, bound to the browser's cookie nonce and to the
    /// time it was issued (`{nonce}-{issued_at_ms}` is the signed subject).
    pub fn csrf_token(&self, nonce: &str, path: &str, issued: Timestamp) -> String {
        self.sign(Purpose::Csrf, &format!("{nonce}-{}", issued.0), &[path])
    }

    /// A form token is good for `path` and this browser's `nonce`, issued at most `max_age`
    /// before `now` (and not after it, give or take a minute of clock skew between nodes).
    pub fn check_csrf(
        &self,
        token: &str,
        nonce: &str,
        path: &str,
        now: Timestamp,
        max_age: Span,
    ) -> Result<(), CsrfError> {
        let p = KeyRing::split(token).map_err(|_| CsrfError::Invalid)?;
        let (n, issued) = p.subject.rsplit_once('-').ok_or(CsrfError::Invalid)?;
        if n != nonce || self.verify(Purpose::Csrf, &p, &[path]).is_err() {
            return Err(CsrfError::Invalid);
        }
        let issued: i64 = issued.parse().map_err(|_| CsrfError::Invalid)?;
        if issued > now.0 + 60_000 || now.0 - issued > max_age.0 {
            return Err(CsrfError::Expired);
        }
        Ok(())
    }
}

/// Why a form token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfError {
    /// Not ours, another page's, or another browser's.
    Invalid,
    /// Ours, but issued too long ago.
    Expired,
}

/// A new key spec `k<random>:<base64url of 32 random bytes>`.
pub fn generate_spec() -> String {
    let rng = ring::rand::SystemRandom::new();
    let mut raw = [0u8; 32];
    // SystemRandom only fails when the OS has no randomness; then nothing else works either.
    if ring::rand::SecureRandom::fill(&rng, &mut raw).is_err() {
        use rand::RngCore;
        rand::rng().fill_bytes(&mut raw);
    }
    let kid = format!(
        "k{}",
        crate::core::domain::random_base32(6).to_ascii_lowercase()
    );
    format!("{kid}:{}", B64.encode(raw))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// SHA-256 of a secret, hex: how API tokens are stored.
pub fn sha256_hex(secret: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring2() -> KeyRing {
        let a = generate_spec();
        let b = generate_spec();
        KeyRing::parse(&format!("{a},{b}"), "").unwrap()
    }

    #[test]
    fn codes_verify_and_any_changed_byte_fails() {
        let r = ring2();
        let offer = OfferId::generate();
        let code = r.advisor_code(&offer, "loc-berlin");
        let p = KeyRing::split(&code).unwrap();
        assert_eq!(p.subject, offer.as_str());
        r.verify(Purpose::AdvisorCode, &p, &["loc-berlin"]).unwrap();
        assert_eq!(
            r.verify(Purpose::AdvisorCode, &p, &["loc-wien"]),
            Err(CodeError::BadSignature)
        );
        assert!(r.verify(Purpose::RemoveRoles, &p, &["loc-berlin"]).is_err());
        let bytes = code.as_bytes();
        for i in 0..bytes.len() {
            for delta in [1u8, 32] {
                let mut b = bytes.to_vec();
                b[i] = b[i].wrapping_add(delta);
                let Ok(s) = String::from_utf8(b) else {
                    continue;
                };
                let ok = KeyRing::split(&s)
                    .ok()
                    .is_some_and(|p| r.verify(Purpose::AdvisorCode, &p, &["loc-berlin"]).is_ok());
                assert!(!ok, "changed byte {i} still verifies: {s}");
            }
        }
    }

    #[test]
    fn rotation_old_keys_verify_new_key_signs() {
        let old = generate_spec();
        let new = generate_spec();
        let r_old = KeyRing::parse(&old, "").unwrap();
        let code = r_old.advisor_code(&OfferId::generate(), "l");
        let r = KeyRing::parse(&format!("{new},{old}"), "").unwrap();
        let p = KeyRing::split(&code).unwrap();
        r.verify(Purpose::AdvisorCode, &p, &["l"]).unwrap();
        assert_ne!(r.signing_kid(), p.kid);
        let r_new_only = KeyRing::parse(&new, "").unwrap();
        assert!(matches!(
            r_new_only.verify(Purpose::AdvisorCode, &p, &["l"]),
            Err(CodeError::UnknownKey(_))
        ));
    }

    #[test]
    fn bad_key_specs_are_refused() {
        assert!(KeyRing::parse("k1:short", "").is_err());
        assert!(KeyRing::parse("", "").is_err());
        let a = generate_spec();
        assert!(KeyRing::parse(&a, "nope").is_err());
        let (kid, key) = a.split_once(':').unwrap();
        assert!(KeyRing::parse(&format!("{kid}:{key},{kid}:{key}"), "").is_err());
    }

    #[test]
    fn a_key_is_generated_once_into_the_data_folder_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let none = LinkSettings {
            keys: crate::core::config::Secret::new(""),
            signing_key: String::new(),
        };
        let (first, warning) = KeyRing::load(&none, dir.path()).unwrap();
        assert!(warning.unwrap().contains("link-keys"));
        let (again, warning) = KeyRing::load(&none, dir.path()).unwrap();
        assert!(warning.is_none());
        assert_eq!(first.signing_kid(), again.signing_kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("link-keys"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key file is private");
        }
        // Configured keys win over the file.
        let spec = generate_spec();
        let configured = LinkSettings {
            keys: crate::core::config::Secret::new(spec.clone()),
            signing_key: String::new(),
        };
        let (r, w) = KeyRing::load(&configured, dir.path()).unwrap();
        assert!(w.is_none());
        assert_eq!(r.signing_kid(), spec.split_once(':').unwrap().0);
    }

    #[test]
    fn csrf_binds_nonce_and_path() {
        let r = ring2();
        let at = Timestamp(1_000_000_000);
        let age = Span(2 * 3_600_000);
        let t = r.csrf_token("nonce1", "/o/x", at);
        assert_eq!(r.check_csrf(&t, "nonce1", "/o/x", at, age), Ok(()));
        assert_eq!(
            r.check_csrf(&t, "nonce1", "/o/x", at.plus(Span(age.0)), age),
            Ok(())
        );
        assert_eq!(
            r.check_csrf(&t, "nonce1", "/o/x", at.plus(Span(age.0 + 1)), age),
            Err(CsrfError::Expired)
        );
        assert_eq!(
            r.check_csrf(&t, "nonce1", "/o/x", Timestamp(at.0 - 120_000), age),
            Err(CsrfError::Expired),
            "issued in the future"
        );
        assert!(r.check_csrf(&t, "nonce2", "/o/x", at, age).is_err());
        assert!(r.check_csrf(&t, "nonce1", "/o/y", at, age).is_err());
        assert!(r.check_csrf("", "nonce1", "/o/x", at, age).is_err());
        // A changed time in the subject breaks the MAC.
        let forged = t.replace("-1000000000.", "-1000000001.");
        assert_ne!(forged, t);
        assert_eq!(
            r.check_csrf(&forged, "nonce1", "/o/x", at, age),
            Err(CsrfError::Invalid)
        );
    }
}
