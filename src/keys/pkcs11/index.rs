//! An index of the token's key objects while the registry opens every
//! stored version at start-up: one enumeration of the token's objects
//! instead of one `C_FindObjects` per version. (Not in a refresh, which
//! usually opens a version or two: an enumeration would cost a network
//! HSM more round trips than the finds it saves.)
//!
//! SoftHSM2's file store re-reads every object file on each
//! `C_FindObjectsInit`, so a find per version made opening N keys cost
//! N²: 155 s of start-up for 1,600 keys (docs/benchmarks.md, "Scale in
//! keys (issue 18)"). A network HSM pays a round trip per find instead. The index is
//! built on the first lookup after [`Index::start`], used only in the pool
//! generation it was built in, and dropped by [`Index::stop`]; a label it
//! does not hold (an object created since) is looked up the usual way.

use std::collections::HashMap;

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use parking_lot::Mutex;

/// The objects of one generation, by class (its `CK_OBJECT_CLASS`, a
/// `CK_ULONG`: cryptoki's type is not `Hash`) and label.
struct Built {
    generation: u64,
    objects: HashMap<(std::os::raw::c_ulong, Vec<u8>), Vec<ObjectHandle>>,
}

#[derive(Default)]
enum State {
    /// Not opening many: every lookup is the caller's own find.
    #[default]
    Off,
    /// Opening many; built on the first lookup.
    Wanted,
    Ready(Built),
}

/// See the module documentation.
#[derive(Default)]
pub(super) struct Index(Mutex<State>);

impl Index {
    /// Many opens follow: index on the next lookup.
    pub(super) fn start(&self) {
        *self.0.lock() = State::Wanted;
    }

    /// The opens are done (or the token changed): drop the index.
    pub(super) fn stop(&self) {
        *self.0.lock() = State::Off;
    }

    /// The handles of `class` objects labelled `label`, from the index of
    /// `generation`; `None` when there is no index or it does not know the
    /// label (the caller then finds it itself).
    pub(super) fn lookup(
        &self,
        s: &Session,
        generation: u64,
        class: ObjectClass,
        label: &str,
    ) -> std::result::Result<Option<Vec<ObjectHandle>>, CkError> {
        let mut st = self.0.lock();
        let stale = match &*st {
            State::Off => return Ok(None),
            State::Wanted => true,
            State::Ready(b) => b.generation != generation,
        };
        if stale {
            *st = State::Ready(build(s, generation)?);
        }
        let State::Ready(b) = &*st else {
            return Ok(None);
        };
        Ok(b.objects.get(&(*class, label.as_bytes().to_vec())).cloned())
    }
}

/// Every token object's class and label, in one enumeration.
fn build(s: &Session, generation: u64) -> std::result::Result<Built, CkError> {
    let mut objects: HashMap<_, Vec<ObjectHandle>> = HashMap::new();
    for h in s.find_objects(&[Attribute::Token(true)])? {
        let (mut class, mut label) = (None, None);
        for a in s.get_attributes(h, &[AttributeType::Class, AttributeType::Label])? {
            match a {
                Attribute::Class(c) => class = Some(c),
                Attribute::Label(l) => label = Some(l),
                _ => {}
            }
        }
        if let (Some(c), Some(l)) = (class, label) {
            objects.entry((*c, l)).or_default().push(h);
        }
    }
    Ok(Built {
        generation,
        objects,
    })
}
