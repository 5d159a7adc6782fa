//! Rate-limit arithmetic, pure: the campaign sender's token buckets (per transport, per
//! campaign, per recipient domain) and what a claim may take from them, and the public pages'
//! fixed-window counters. The store only reads and writes the rows (`rate_buckets`,
//! `rate_counters`) in the claim's or the hit's statement; what they mean is decided here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::domain::{Span, Timestamp};

/// Rate limits applied when claiming campaign recipients (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimits {
    /// Per SMTP transport (shared by every worker on the database), messages per second.
    pub per_second: u32,
    /// Per recipient domain, messages per minute.
    pub per_domain_per_minute: u32,
    /// This campaign's own cap, messages per minute.
    pub campaign_per_minute: u32,
}

/// The transport's bucket key.
pub const TRANSPORT_KEY: &str = "transport";

/// A campaign's own bucket key.
pub fn campaign_key(campaign: &str) -> String {
    format!("campaign:{campaign}")
}

/// A recipient domain's bucket key.
pub fn domain_key(domain: &str) -> String {
    format!("domain:{domain}")
}

impl RateLimits {
    pub fn any(&self) -> bool {
        self.per_second > 0 || self.per_domain_per_minute > 0 || self.campaign_per_minute > 0
    }

    /// The buckets every claim of `campaign` spends from, whatever the recipients' domains:
    /// the transport's (per second) and the campaign's own (per minute), those that are set.
    pub fn shared_buckets(&self, campaign: &str) -> Vec<(String, Bucket)> {
        let mut out = Vec::new();
        if self.per_second > 0 {
            out.push((
                TRANSPORT_KEY.to_string(),
                Bucket::new(self.per_second, 1000),
            ));
        }
        if self.campaign_per_minute > 0 {
            out.push((
                campaign_key(campaign),
                Bucket::new(self.campaign_per_minute, 60_000),
            ));
        }
        out
    }

    /// The bucket of each recipient domain, if domains are limited.
    pub fn domain_bucket(&self) -> Option<Bucket> {
        (self.per_domain_per_minute > 0).then(|| Bucket::new(self.per_domain_per_minute, 60_000))
    }

    /// How many due recipients to look at to take `allow`: more when domains are limited, so
    /// that one busy domain does not starve the others.
    pub fn lookahead(&self, allow: i64) -> i64 {
        if self.per_domain_per_minute > 0 {
            allow * 4
        } else {
            allow
        }
    }
}

/// A token bucket that allows at most `limit` messages in any window of `window_ms`: it holds
/// `burst = max(1, limit / 10)` tokens and refills at `(limit - burst) / window` (at
/// `limit / window` when the limit is below 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub burst: f64,
    /// Tokens per millisecond.
    pub rate: f64,
}

impl Bucket {
    pub fn new(limit: u32, window_ms: i64) -> Bucket {
        let l = f64::from(limit.max(1));
        let burst = (l / 10.0).floor().max(1.0);
        let rate = if l > burst {
            (l - burst) / window_ms as f64
        } else {
            l / window_ms as f64
        };
        Bucket { burst, rate }
    }
    /// Tokens at `now` given `tokens` at `at`.
    pub fn refill(&self, tokens: f64, at: i64, now: i64) -> f64 {
        (tokens + (now - at).max(0) as f64 * self.rate).min(self.burst)
    }
    /// When `tokens` (at `now`) reaches 1 + `queued`.
    pub fn ready_at(&self, tokens: f64, now: i64, queued: f64) -> i64 {
        let missing = (1.0 + queued - tokens).max(0.0);
        now + (missing / self.rate).ceil() as i64
    }
    /// The tokens at `now` of a bucket whose row says `stored` (none: never used, full).
    pub fn level(&self, stored: Option<&Stored>, now: i64) -> f64 {
        match stored {
            Some(s) => self.refill(s.tokens, s.at, now),
            None => self.burst,
        }
    }
}

/// A bucket's row as stored: `tokens` at time `at` (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stored {
    pub tokens: f64,
    pub at: i64,
}

/// A bucket at the time of a claim: its key, its shape and its tokens now (what is written
/// back, stamped with the claim's time, once the claim has spent from it).
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub key: String,
    pub bucket: Bucket,
    pub tokens: f64,
}

/// The levels of `buckets` at `now`, from their stored rows.
pub fn levels(
    buckets: Vec<(String, Bucket)>,
    stored: &HashMap<String, Stored>,
    now: i64,
) -> Vec<Level> {
    buckets
        .into_iter()
        .map(|(key, bucket)| {
            let tokens = bucket.level(stored.get(&key), now);
            Level {
                key,
                bucket,
                tokens,
            }
        })
        .collect()
}

/// How many of `want` recipients the shared buckets allow at `now` (whole tokens), and, when
/// they hold some back, when the last of the limiting buckets has a token again.
pub fn allowance(shared: &[Level], want: i64, now: i64) -> (i64, Option<i64>) {
    let mut allow = want;
    let mut limited_until: Option<i64> = None;
    for l in shared {
        let whole = l.tokens.floor() as i64;
        if whole < allow {
            allow = whole.max(0);
            let at = l.bucket.ready_at(l.tokens, now, 0.0);
            limited_until = Some(limited_until.map_or(at, |u| u.max(at)));
        }
    }
    (allow, limited_until)
}

/// Spends one token per recipient claimed from each shared bucket.
pub fn spend(shared: &mut [Level], claimed: usize) {
    for l in shared {
        l.tokens -= claimed as f64;
    }
}

/// A domain whose bucket ran out: its due recipients move to `first` (when its next token is
/// there), one token's time (`every_ms`) apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferral {
    pub domain: String,
    pub first: i64,
    pub every_ms: f64,
}

/// What the domain buckets let a claim take from its candidates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DomainPick {
    /// The candidates' `seq`s to claim, in candidate order.
    pub take: Vec<i64>,
    /// Domains out of tokens (each once).
    pub deferred: Vec<Deferral>,
    /// The buckets of the domains looked at, spent (to write back), in key order.
    pub levels: Vec<Level>,
}

/// The bucket keys of the candidates' domains (to read before [`pick_by_domain`]).
pub fn domain_keys<'a>(domains: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    domains
        .into_iter()
        .map(domain_key)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Takes candidates (`seq`, domain; due order) while fewer than `allow` are taken, each
/// spending a token of its domain's bucket (shape `bucket`, rows `stored`); a domain without
/// a token is deferred once (its whole backlog moves, leaving the head of the queue to the
/// other domains).
pub fn pick_by_domain(
    bucket: Bucket,
    candidates: &[(i64, String)],
    stored: &HashMap<String, Stored>,
    allow: i64,
    now: i64,
) -> DomainPick {
    let mut pick = DomainPick::default();
    // Per domain key: tokens now, and whether it has been deferred.
    let mut domains: BTreeMap<String, (f64, bool)> = BTreeMap::new();
    for (seq, domain) in candidates {
        if pick.take.len() as i64 >= allow {
            break;
        }
        let key = domain_key(domain);
        let e = domains
            .entry(key)
            .or_insert_with_key(|key| (bucket.level(stored.get(key.as_str()), now), false));
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            pick.take.push(*seq);
        } else if !e.1 {
            pick.deferred.push(Deferral {
                domain: domain.clone(),
                first: bucket.ready_at(e.0, now, 0.0),
                every_ms: 1.0 / bucket.rate,
            });
            e.1 = true;
        }
    }
    pick.levels = domains
        .into_iter()
        .map(|(key, (tokens, _))| Level {
            key,
            bucket,
            tokens,
        })
        .collect();
    pick
}

/// A fixed-window counter: at most `limit` hits in each window of `window` (windows start at
/// multiples of it since the epoch). The public pages' limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    pub window: Span,
    pub limit: u32,
}

impl FixedWindow {
    /// When the window holding `now` started.
    pub fn start(&self, now: Timestamp) -> Timestamp {
        Timestamp(now.0 - now.0.rem_euclid(self.window.0.max(1)))
    }
    /// Whether the hit that made the window's count `count` is within the limit.
    pub fn allows(&self, count: i64) -> bool {
        count <= i64::from(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_shapes() {
        // 20 a minute: a burst of 2, then 18 over the minute.
        let b = Bucket::new(20, 60_000);
        assert_eq!(b.burst, 2.0);
        assert_eq!(b.rate, 18.0 / 60_000.0);
        // Below 10: a burst of one.
        let b = Bucket::new(5, 1000);
        assert_eq!((b.burst, b.rate), (1.0, 4.0 / 1000.0));
        // 1 (and 0, read as 1): one token, refilled over the whole window.
        assert_eq!(Bucket::new(1, 1000), Bucket::new(0, 1000));
        assert_eq!(Bucket::new(1, 1000).rate, 1.0 / 1000.0);
        assert_eq!(Bucket::new(1, 1000).burst, 1.0);
        // Never above the burst; time going backwards adds nothing.
        let b = Bucket::new(20, 60_000);
        assert_eq!(b.refill(0.0, 0, 10_000_000), 2.0);
        assert_eq!(b.refill(0.5, 1000, 0), 0.5);
        assert_eq!(b.level(None, 0), 2.0);
        assert_eq!(b.level(Some(&Stored { tokens: 0.0, at: 0 }), 0), 0.0);
    }

    /// The first moment a bucket has a token is `ready_at`, not a millisecond before or after.
    #[test]
    fn ready_at_is_the_first_millisecond_with_a_token() {
        // 1/1024 token per ms (66 per 61 440 ms, burst 6): exact in binary.
        let b = Bucket::new(66, 61_440);
        assert_eq!((b.burst, b.rate), (6.0, 1.0 / 1024.0));
        let at = b.ready_at(0.25, 1000, 0.0);
        assert_eq!(at, 1000 + 768);
        assert!(b.refill(0.25, 1000, at - 1) < 1.0);
        assert!(b.refill(0.25, 1000, at) >= 1.0);
        // With one queued ahead: two tokens.
        assert_eq!(b.ready_at(0.25, 1000, 1.0), 1000 + 768 + 1024);
        // Already there: now.
        assert_eq!(b.ready_at(1.0, 1000, 0.0), 1000);
        assert_eq!(b.ready_at(3.5, 1000, 0.0), 1000);
    }

    /// A sender that takes a token whenever there is one, sleeping until `ready_at`
    /// otherwise, sends at most `limit` in any window, and the limit-th message goes out at
    /// the end of the first window exactly (the limit is used, not undercut by one).
    #[test]
    fn a_bucket_holds_its_limit_in_every_window_and_reaches_it() {
        for (limit, window) in [(66u32, 61_440i64), (2, 1024), (11, 10_240)] {
            let b = Bucket::new(limit, window);
            let mut sends: Vec<i64> = Vec::new();
            let mut stored: Option<Stored> = None;
            let mut t = 0;
            while t <= 3 * window {
                let tokens = b.level(stored.as_ref(), t);
                if tokens >= 1.0 {
                    sends.push(t);
                    stored = Some(Stored {
                        tokens: tokens - 1.0,
                        at: t,
                    });
                } else {
                    t = b.ready_at(tokens, t, 0.0);
                }
            }
            for (i, s) in sends.iter().enumerate() {
                let within = sends[i..].iter().take_while(|x| **x < s + window).count();
                assert!(
                    within <= limit as usize,
                    "{limit}/{window}: {within} in the window from {s}"
                );
            }
            let first_window = sends.iter().filter(|x| **x <= window).count();
            assert_eq!(first_window, limit as usize, "{limit}/{window}: {sends:?}");
        }
    }

    fn level(key: &str, b: Bucket, tokens: f64) -> Level {
        Level {
            key: key.into(),
            bucket: b,
            tokens,
        }
    }

    #[test]
    fn shared_buckets_allow_whole_tokens_and_say_when_more() {
        let limits = RateLimits {
            per_second: 10,
            per_domain_per_minute: 0,
            campaign_per_minute: 20,
        };
        assert!(limits.any());
        assert!(!RateLimits::default().any());
        let shapes = limits.shared_buckets("c1");
        let keys: Vec<&str> = shapes.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(keys, ["transport", "campaign:c1"]);
        assert_eq!(limits.domain_bucket(), None);
        assert_eq!(limits.lookahead(7), 7);
        // Unused buckets are full.
        let full = levels(shapes.clone(), &HashMap::new(), 0);
        assert_eq!(full[0].tokens, 1.0);
        assert_eq!(full[1].tokens, 2.0);
        // The transport has one token: one now, and (exactly one left) more at once after.
        assert_eq!(allowance(&full, 50, 0), (1, Some(0)));
        // Enough tokens: no limit reached.
        assert_eq!(allowance(&full, 1, 0), (1, None));
        let t = Bucket::new(10, 1000);
        let c = Bucket::new(20, 60_000);
        // The campaign is the tighter one: it decides, and says when.
        let l = [level("transport", t, 1.0), level("campaign:c1", c, 0.5)];
        assert_eq!(allowance(&l, 50, 0), (0, Some(c.ready_at(0.5, 0, 0.0))));
        // Spent: one token per recipient from each.
        let mut l = vec![level("transport", t, 1.0), level("campaign:c1", c, 2.0)];
        spend(&mut l, 1);
        assert_eq!((l[0].tokens, l[1].tokens), (0.0, 1.0));
        // Stored rows refill.
        let stored: HashMap<String, Stored> = [(
            "campaign:c1".to_string(),
            Stored {
                tokens: 0.0,
                at: 1000,
            },
        )]
        .into();
        let l = levels(limits.shared_buckets("c1"), &stored, 1000 + 60_000);
        assert_eq!(l[1].tokens, 2.0);
    }

    #[test]
    fn domain_buckets_take_defer_once_and_keep_order() {
        let limits = RateLimits {
            per_domain_per_minute: 20,
            ..Default::default()
        };
        assert!(limits.shared_buckets("c").is_empty());
        assert_eq!(limits.lookahead(5), 20);
        let b = limits.domain_bucket().unwrap();
        let cands: Vec<(i64, String)> =
            [(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "a"), (6, "b")]
                .into_iter()
                .map(|(s, d)| (s, d.to_string()))
                .collect();
        assert_eq!(
            domain_keys(cands.iter().map(|c| c.1.as_str())),
            ["domain:a", "domain:b"]
        );
        let stored: HashMap<String, Stored> =
            [("domain:b".to_string(), Stored { tokens: 0.5, at: 0 })].into();
        let p = pick_by_domain(b, &cands, &stored, 10, 0);
        // a: a burst of 2; b: half a token, deferred.
        assert_eq!(p.take, [1, 2]);
        assert_eq!(
            p.deferred,
            [
                Deferral {
                    domain: "a".into(),
                    first: b.ready_at(0.0, 0, 0.0),
                    every_ms: 1.0 / b.rate
                },
                Deferral {
                    domain: "b".into(),
                    first: b.ready_at(0.5, 0, 0.0),
                    every_ms: 1.0 / b.rate
                },
            ]
        );
        assert_eq!(
            p.levels,
            [level("domain:a", b, 0.0), level("domain:b", b, 0.5)]
        );
        // `allow` stops the walk: the domains not reached are not written.
        let p = pick_by_domain(b, &cands, &HashMap::new(), 1, 0);
        assert_eq!(p.take, [1]);
        assert!(p.deferred.is_empty());
        assert_eq!(p.levels, [level("domain:a", b, 1.0)]);
    }

    /// The `limit`-th hit of a window is allowed, the next is not; a window starts at a
    /// multiple of its length (that millisecond belongs to the new one).
    #[test]
    fn fixed_windows_count_up_to_the_limit() {
        let w = FixedWindow {
            window: Span(60_000),
            limit: 3,
        };
        assert!(w.allows(1));
        assert!(w.allows(3));
        assert!(!w.allows(4));
        assert_eq!(w.start(Timestamp(120_000)), Timestamp(120_000));
        assert_eq!(w.start(Timestamp(119_999)), Timestamp(60_000));
        assert_eq!(w.start(Timestamp(120_001)), Timestamp(120_000));
        assert_eq!(w.start(Timestamp(-1)), Timestamp(-60_000));
        // A zero window cannot divide by zero: every millisecond its own window.
        let z = FixedWindow {
            window: Span(0),
            limit: 0,
        };
        assert_eq!(z.start(Timestamp(12_345)), Timestamp(12_345));
        assert!(!z.allows(1));
    }
}
