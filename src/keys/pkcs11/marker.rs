//! The token registry's change marker: how a polled refresh learns,
//! without reading every record, that another process changed one.
//!
//! A profile of an idle server with 1,000 keys on SoftHSM2
//! (docs/benchmarks.md, "Scale in keys (issue 18)") put nearly all of its
//! CPU in the re-read of the registry on every tick: SoftHSM2's
//! `C_FindObjects` refreshes every object of the token, key objects
//! included (an `open`,
//! `fcntl` lock and `read` of each object's file), and reading each
//! record's label and value does it again and decrypts them. So the tick
//! now reads one known object instead of searching: the marker.
//!
//! The marker is a `CKO_DATA` object with its own `CKA_APPLICATION` and
//! label, so a search for records never finds it (nor does an older
//! signet's, which would report it as an unreadable record). Its value is
//! 16 random bytes. Like the records, it is never modified: every `put`,
//! after its record object is durable, creates a new marker and destroys
//! the ones it found before creating it.
//!
//! A full load finds the markers *before* it searches the records, and
//! remembers their handles and values ([`Watch`]). A later check reads
//! those handles: if one no longer reads (it was destroyed) or reads
//! another value, something may have changed and the registry loads
//! everything. Why that misses no write: a writer that creates its record
//! after the load's record search looks for markers later still, so it
//! finds and destroys every remembered marker that still exists; one that
//! no longer exists reads as a change anyway. Two writers at once may
//! leave two markers (each destroys only what it found): the next load
//! remembers both. A crash between the record and the marker, or a
//! marker write that failed, is caught by the backstop: a full load at
//! least every [`BACKSTOP`], whatever the markers say. A token with no
//! marker (written by an older signet) gets one from the first check,
//! made before the full load that then remembers it.

use std::time::{Duration, Instant};

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::errors::is_token_failure;
use super::pool::Pool;

/// `CKA_APPLICATION` of the marker (the records': `signet-registry`).
const APPLICATION: &[u8] = b"signet-registry-marker";
/// `CKA_LABEL` of the marker: not `signet-registry:NAME`, so never taken
/// for a record, and not `NAME:vN:HEX`, so never for key material.
pub(super) const LABEL: &str = "signet-registry-marker";

/// The longest a polled store goes without a full load.
pub(super) const BACKSTOP: Duration = Duration::from_secs(60);

/// The markers a load found, read before the records.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Handle and value of each marker that could be read.
    read: Vec<(ObjectHandle, Vec<u8>)>,
    /// Some marker was found but could not be read (destroyed meanwhile).
    unreadable: bool,
}

/// What the last full load saw, for [`Watch::check`].
#[derive(Debug)]
pub(super) struct Watch {
    /// The pool's handle generation the handles belong to.
    generation: u64,
    found: Found,
    /// When the last full load was, if any.
    loaded: Option<Instant>,
    /// How long until a full load regardless ([`BACKSTOP`]; shorter in tests).
    pub(super) backstop: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            generation: 0,
            found: Found::default(),
            loaded: None,
            backstop: BACKSTOP,
        }
    }
}

/// What a check concluded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Every remembered marker reads as it did: nothing changed.
    Same,
    /// Something may have changed: load everything.
    Load,
    /// The last load found no marker at all: create one, then load.
    Create,
}

impl Watch {
    /// Remembers what a full load found.
    pub(super) fn loaded(&mut self, generation: u64, found: Found) {
        self.generation = generation;
        self.found = found;
        self.loaded = Some(Instant::now());
    }

    /// Forgets the last load: the next check asks for one.
    pub(super) fn forget(&mut self) {
        self.loaded = None;
    }

    /// Whether a full load is needed, reading the remembered markers
    /// with `s` (handles of `generation`).
    pub(super) fn check(&self, generation: u64, s: &Session) -> Result<Check, CkError> {
        let Some(at) = self.loaded else {
            return Ok(Check::Load);
        };
        if at.elapsed() >= self.backstop || generation != self.generation || self.found.unreadable {
            return Ok(Check::Load);
        }
        if self.found.read.is_empty() {
            return Ok(Check::Create);
        }
        for (h, value) in &self.found.read {
            match s.get_attributes(*h, &[AttributeType::Value]) {
                Ok(attrs) => {
                    let same = attrs
                        .iter()
                        .any(|a| matches!(a, Attribute::Value(v) if v == value));
                    if !same {
                        return Ok(Check::Load);
                    }
                }
                Err(e) if is_token_failure(&e) => return Err(e),
                // Destroyed by a writer: its handle no longer reads.
                Err(_) => return Ok(Check::Load),
            }
        }
        Ok(Check::Same)
    }
}

fn template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Label(LABEL.as_bytes().to_vec()),
    ]
}

/// The markers on the token and their values.
pub(super) fn find(pool: &Pool, s: &Session) -> Result<Found, CkError> {
    let mut found = Found::default();
    for h in pool.find(s, &template())? {
        match s.get_attributes(h, &[AttributeType::Value]) {
            Ok(attrs) => {
                let value = attrs.into_iter().find_map(|a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                });
                found.read.push((h, value.unwrap_or_default()));
            }
            Err(e) if is_token_failure(&e) => return Err(e),
            Err(_) => found.unreadable = true,
        }
    }
    Ok(found)
}

/// A new marker with a fresh value.
pub(super) fn create(s: &Session) -> Result<ObjectHandle, CkError> {
    let value: [u8; 16] = rand::random();
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Modifiable(false),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Label(LABEL.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ])
}

/// Tells the other processes that a record changed: a new marker, then
/// the markers found before it are destroyed. Called after the record
/// object is durable, never before (a process that loaded between the two
/// would remember the new marker and miss the record).
pub(super) fn bump(s: &Session) -> Result<(), CkError> {
    let old = s.find_objects(&template())?;
    create(s)?;
    for h in old {
        let _ = s.destroy_object(h);
    }
    Ok(())
}
