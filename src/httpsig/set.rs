//! The profiles in force, replaced as a whole on reload.

use super::presets::SecretEncoding;
use super::profile::Profile;

/// The profiles in force, replaceable as a whole (a SIGHUP reload): a
/// request uses the set it started with.
#[derive(Debug, Default)]
pub(crate) struct ProfileSet {
    current: parking_lot::RwLock<std::sync::Arc<Profiles>>,
}

/// One generation of profiles.
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    by_name: std::collections::HashMap<String, std::sync::Arc<Profile>>,
    /// Keys whose preset writes secrets in a form of its own.
    secrets: std::collections::BTreeMap<String, SecretEncoding>,
}

impl Profiles {
    fn new(profiles: Vec<Profile>) -> Self {
        // Imports for keys named by a profile whose preset writes secrets
        // in a form of its own (`standard-webhooks`: `whsec_`) decode them
        // (docs/http-signing.md, "Presets").
        let secrets = profiles
            .iter()
            .filter_map(|p| Some((p, p.preset?.row().secret)))
            .filter(|(_, e)| *e != SecretEncoding::Raw)
            .flat_map(|(p, e)| [p.key.clone(), p.verify_key.clone()].map(|k| k.map(|k| (k, e))))
            .flatten()
            .collect();
        let by_name = profiles
            .into_iter()
            .map(|p| (p.name.clone(), std::sync::Arc::new(p)))
            .collect();
        Self { by_name, secrets }
    }

    /// The profile called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&std::sync::Arc<Profile>> {
        self.by_name.get(name)
    }

    /// Every profile, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &std::sync::Arc<Profile>> {
        self.by_name.values()
    }

    /// How secrets imported for `key` are written: `Whsec` when a
    /// `standard-webhooks` profile names it, else `Raw`.
    pub(crate) fn secret_encoding(&self, key: &str) -> SecretEncoding {
        self.secrets
            .get(key)
            .copied()
            .unwrap_or(SecretEncoding::Raw)
    }
}

impl ProfileSet {
    /// A set holding `profiles`.
    pub(crate) fn new(profiles: Vec<Profile>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            current: parking_lot::RwLock::new(std::sync::Arc::new(Profiles::new(profiles))),
        })
    }

    /// The profiles in force.
    pub(crate) fn current(&self) -> std::sync::Arc<Profiles> {
        self.current.read().clone()
    }

    /// Replaces every profile at once.
    pub(crate) fn replace(&self, profiles: Vec<Profile>) {
        *self.current.write() = std::sync::Arc::new(Profiles::new(profiles));
    }
}
