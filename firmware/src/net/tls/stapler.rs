//! The node's OCSP stapling state: which certificates have a responder, the answer
//! stapled for each, and when to ask again.
//!
//! The protocol itself is in [`super::ocsp`]. This keeps, per served certificate (by
//! its `tls_certs` name), the last good answer and a schedule: refresh at half of an
//! answer's validity, retry failures with a backoff from 10 s to 1 h, and drop a staple
//! the moment it stops being valid. The last good answer is also kept in `data.db`
//! (`tls_ocsp`), so a node restarted without internet still staples it while it lasts.

use super::ocsp::{OcspError, Subject, Verdict};
use rusqlite::{params, Connection};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// First retry after a failed check; doubled per failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 10_000;
/// Longest wait between retries, and between checks of a revoked certificate.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// Shortest wait before refreshing a good answer.
const MIN_REFRESH_MS: i64 = 60_000;
/// Longest wait before refreshing a good answer.
const MAX_REFRESH_MS: i64 = 86_400_000;

/// What `fazt cert list` and `GET /api/tls` show about a certificate's OCSP.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OcspStatus {
    /// The responder the certificate names.
    pub responder: String,
    /// `pending` (not asked yet), `good`, `revoked`, `unknown` or `error`.
    pub status: &'static str,
    /// True while a good answer is stapled to handshakes.
    pub stapled: bool,
    /// When the stapled answer stops being valid (RFC 3339).
    pub valid_until: Option<String>,
    /// When the certificate was revoked (RFC 3339), for `revoked`.
    pub revoked_at: Option<String>,
    /// The last failure, for `error` (and `unknown`).
    pub error: Option<String>,
    /// The next check (RFC 3339).
    pub next_check: String,
    /// Failed checks in a row.
    pub failures: u32,
}

/// One certificate with a responder.
#[derive(Debug)]
struct Entry {
    /// The leaf's and issuer's DER: a replaced certificate, or the same one with
    /// another intermediate, starts over.
    chain: Vec<u8>,
    subject: Subject,
    /// The stapled answer and when it stops being valid (Unix ms).
    staple: Option<(Vec<u8>, i64)>,
    /// `thisUpdate` of the newest good answer taken: an older one is refused (replayed).
    this_update: i64,
    status: &'static str,
    revoked_at: Option<i64>,
    error: Option<String>,
    next_check: i64,
    failures: u32,
}

/// A certificate whose check is due: its name, and what to ask about.
#[derive(Debug, Clone)]
pub struct Due {
    /// The `tls_certs` name.
    pub name: String,
    /// The leaf, its issuer and responder.
    pub subject: Subject,
    chain: Vec<u8>,
}

/// What a check changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing to reload or keep.
    Nothing,
    /// A new good answer: keep it in `data.db` and reload the table.
    Stapled(Vec<u8>),
    /// The certificate was revoked: forget the kept answer and reload the table.
    Revoked,
}

/// OCSP state of every served certificate that names a responder.
#[derive(Debug, Default)]
pub struct Stapler {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Stapler {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called for every certificate a reload serves: the answer to staple to it, if
    /// any. A certificate seen for the first time (or replaced) starts from `kept`, the
    /// answer kept in `data.db`, when that one still checks out. True in the second
    /// field when the certificate is new here, so that the caller wakes the refresh loop.
    pub fn staple_for(
        &self,
        kept: Option<&[u8]>,
        name: &str,
        chain: &[impl AsRef<[u8]>],
        now: i64,
    ) -> (Option<Vec<u8>>, bool) {
        let key: Vec<u8> = chain.iter().take(2).flat_map(|c| c.as_ref().iter().copied()).collect();
        let mut entries = self.entries();
        if let Some(entry) = entries.get(name).filter(|e| e.chain == key) {
            return (
                entry.staple.as_ref().filter(|(_, until)| *until > now).map(|(der, _)| der.clone()),
                false,
            );
        }
        let subject = match Subject::from_chain(chain) {
            Ok(Some(subject)) => subject,
            Ok(None) => {
                entries.remove(name);
                return (None, false);
            }
            Err(err) => {
                tracing::warn!(name, error = %err, "OCSP stapling is not possible for this certificate");
                entries.remove(name);
                return (None, false);
            }
        };
        let mut entry = Entry {
            chain: key,
            subject,
            staple: None,
            this_update: i64::MIN,
            status: "pending",
            revoked_at: None,
            error: None,
            next_check: now,
            failures: 0,
        };
        if let Some(der) = kept {
            if let Ok(Verdict::Good { der, this_update, next_update }) = entry.subject.check(der, now) {
                entry.staple = Some((der, next_update));
                entry.status = "good";
                entry.this_update = this_update;
                entry.next_check = refresh_at(this_update, next_update, now);
            }
        }
        let staple = entry.staple.as_ref().map(|(der, _)| der.clone());
        entries.insert(name.to_string(), entry);
        (staple, true)
    }

    /// Forgets certificates no longer served.
    pub fn retain(&self, served: &std::collections::HashSet<String>) {
        self.entries().retain(|name, _| served.contains(name));
    }

    /// The checks due at `now`.
    pub fn due(&self, now: i64) -> Vec<Due> {
        self.entries()
            .iter()
            .filter(|(_, e)| e.next_check <= now)
            .map(|(name, e)| Due { name: name.clone(), subject: e.subject.clone(), chain: e.chain.clone() })
            .collect()
    }

    /// When the next check or staple expiry after `now` is (Unix ms).
    pub fn next_event(&self, now: i64) -> Option<i64> {
        self.entries()
            .values()
            .flat_map(|e| std::iter::once(e.next_check).chain(e.staple.as_ref().map(|(_, until)| *until)))
            .filter(|t| *t > now)
            .min()
    }

    /// Drops staples that stopped being valid; true when one was (the table needs a
    /// reload).
    pub fn expire(&self, now: i64) -> bool {
        let mut changed = false;
        for (name, entry) in self.entries().iter_mut() {
            if entry.staple.as_ref().is_some_and(|(_, until)| *until <= now) {
                tracing::warn!(
                    name,
                    "the stapled OCSP answer expired and no fresh one was obtained; no longer stapled"
                );
                entry.staple = None;
                if entry.status == "good" {
                    entry.status = "error";
                    entry.error.get_or_insert_with(|| "the OCSP answer expired".into());
                }
                changed = true;
            }
        }
        changed
    }

    /// Records the outcome of a check (ignored when the certificate was replaced or
    /// removed meanwhile).
    pub fn record(&self, due: &Due, outcome: Result<Verdict, OcspError>, now: i64) -> Change {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(&due.name).filter(|e| e.chain == due.chain) else {
            return Change::Nothing;
        };
        let name = due.name.as_str();
        // A revocation is final for this certificate: a later "good" can only be an old
        // answer replayed, and a failure must not hide the revocation.
        if entry.status == "revoked" && !matches!(outcome, Ok(Verdict::Revoked { .. })) {
            if matches!(outcome, Ok(Verdict::Good { .. })) {
                tracing::warn!(
                    name,
                    "a 'good' OCSP answer after a revocation was ignored (an old answer replayed?)"
                );
            }
            entry.next_check = now + MAX_BACKOFF_MS;
            return Change::Nothing;
        }
        match outcome {
            Ok(Verdict::Good { this_update, .. }) if this_update < entry.this_update => {
                Self::failed(
                    entry,
                    name,
                    "the OCSP answer is older than the one already taken (replayed?)".into(),
                    now,
                );
                Change::Nothing
            }
            Ok(Verdict::Good { der, this_update, next_update }) => {
                if entry.status != "good" || entry.staple.is_none() {
                    tracing::info!(
                        name,
                        valid_until = crate::time::rfc3339(next_update),
                        "OCSP: the CA says the certificate is good; stapling its answer"
                    );
                }
                entry.status = "good";
                entry.error = None;
                entry.revoked_at = None;
                entry.failures = 0;
                entry.this_update = this_update;
                entry.next_check = refresh_at(this_update, next_update, now);
                entry.staple = Some((der.clone(), next_update));
                Change::Stapled(der)
            }
            Ok(Verdict::Revoked { at }) => {
                tracing::error!(
                    name,
                    revoked_at = crate::time::rfc3339(at),
                    "the CA REVOKED this certificate: clients will refuse it; replace it (`fazt cert add`)"
                );
                entry.status = "revoked";
                entry.revoked_at = Some(at);
                entry.error = None;
                entry.next_check = now + MAX_BACKOFF_MS;
                entry.staple = None;
                Change::Revoked
            }
            Ok(Verdict::Unknown) => {
                entry.status = "unknown";
                Self::failed(entry, name, "the OCSP responder does not know this certificate".into(), now);
                Change::Nothing
            }
            Err(err) => {
                // A staple still valid keeps being served: one failed refresh changes nothing.
                if entry.staple.is_none() {
                    entry.status = "error";
                }
                Self::failed(entry, name, err.to_string(), now);
                Change::Nothing
            }
        }
    }

    fn failed(entry: &mut Entry, name: &str, why: String, now: i64) {
        let wait = FIRST_BACKOFF_MS.saturating_mul(1 << entry.failures.min(20)).min(MAX_BACKOFF_MS);
        entry.failures = entry.failures.saturating_add(1);
        entry.next_check = now + wait;
        tracing::warn!(name, error = %why, retry_in_secs = wait / 1000, "OCSP check failed");
        entry.error = Some(why);
    }

    /// The OCSP status of each certificate with a responder, by name.
    pub fn status(&self, now: i64) -> HashMap<String, OcspStatus> {
        let rfc = crate::time::rfc3339;
        self.entries()
            .iter()
            .map(|(name, e)| {
                let stapled = e.staple.as_ref().filter(|(_, until)| *until > now);
                let status = OcspStatus {
                    responder: e.subject.responder.clone(),
                    status: e.status,
                    stapled: stapled.is_some(),
                    valid_until: stapled.map(|(_, until)| rfc(*until)),
                    revoked_at: e.revoked_at.map(rfc),
                    error: e.error.clone(),
                    next_check: rfc(e.next_check),
                    failures: e.failures,
                };
                (name.clone(), status)
            })
            .collect()
    }
}

/// When to refresh an answer valid from `this_update` to `next_update`: at half its
/// validity, within [1 min, 1 day] from now.
fn refresh_at(this_update: i64, next_update: i64, now: i64) -> i64 {
    let half = this_update.saturating_add((next_update.saturating_sub(this_update)) / 2);
    half.clamp(now + MIN_REFRESH_MS, now + MAX_REFRESH_MS)
}

/// The last good answers kept, by certificate name.
pub fn kept(conn: &Connection) -> rusqlite::Result<HashMap<String, Vec<u8>>> {
    let mut stmt = conn.prepare("SELECT name, response FROM tls_ocsp")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect();
    rows
}

/// Keeps `response` as the last good answer for `name` (unless the certificate was
/// removed meanwhile).
pub fn store(conn: &Connection, name: &str, response: &[u8], now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tls_ocsp(name, response, fetched_at)
         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM tls_certs WHERE name = ?1)
         ON CONFLICT(name) DO UPDATE SET response = excluded.response, fetched_at = excluded.fetched_at",
        params![name, response, now],
    )?;
    Ok(())
}

/// Forgets the answer kept for `name` (revoked, or the certificate is gone).
pub fn forget(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tls_ocsp WHERE name = ?1", [name])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_answers_refresh_at_half_life_within_bounds() {
        let now = 1_000_000_000;
        assert_eq!(refresh_at(now, now + 2 * 86_400_000, now), now + 86_400_000);
        assert_eq!(refresh_at(now, now + 7 * 86_400_000, now), now + MAX_REFRESH_MS);
        assert_eq!(refresh_at(now - 100_000, now + 10_000, now), now + MIN_REFRESH_MS);
    }
}
