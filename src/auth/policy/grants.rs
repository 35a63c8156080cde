//! Grants: the operations an identity may perform and the key and profile
//! name patterns they cover, parsed and checked from `[[auth.identities.grants]]`.

use crate::config::GrantConfig;
use crate::rpcs::Op;

/// A name pattern: `*` matches any run of characters, everything else
/// itself.
#[derive(Clone, Debug)]
struct Pattern(String);

impl Pattern {
    fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

/// Does the pattern `p` match `s`? `*` matches any run of bytes.
pub(super) fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point: linear in
    // practice, never exponential.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// One grant: operations on the keys or profiles whose names match.
#[derive(Debug)]
pub(super) struct Grant {
    ops: Vec<Op>,
    keys: Vec<Pattern>,
    profiles: Vec<Pattern>,
}

impl Grant {
    /// Parses and checks one grant; `what` names it in errors
    /// (`auth.identities[0] (name).grants[1]`).
    pub(super) fn parse(g: &GrantConfig, what: &str) -> Result<Self, String> {
        let mut ops = Vec::new();
        for o in &g.operations {
            ops.extend(parse_op(o).map_err(|e| format!("{what}.operations: {e}"))?);
        }
        if ops.is_empty() {
            return Err(format!("{what}.operations is empty"));
        }
        check_grant(g, &ops, what)?;
        let keys = patterns(&g.keys, &format!("{what}.keys"))?;
        let profiles = patterns(&g.profiles, &format!("{what}.profiles"))?;
        Ok(Self {
            ops,
            keys,
            profiles,
        })
    }

    /// Does this grant allow `op` on the key or profile `name`?
    pub(super) fn allows(&self, op: Op, name: &str) -> bool {
        self.ops.contains(&op)
            && if op.on_profile() {
                self.profiles.iter().any(|p| p.matches(name))
            } else {
                self.keys.iter().any(|p| p.matches(name))
            }
    }

    /// Does this grant hold `op` on any key or profile at all?
    pub(super) fn holds(&self, op: Op) -> bool {
        self.ops.contains(&op)
            && if op.on_profile() {
                !self.profiles.is_empty()
            } else {
                !self.keys.is_empty()
            }
    }
}

fn parse_op(s: &str) -> Result<Vec<Op>, String> {
    // A wildcard leaves out what must be granted by name (`admin.export`).
    if s == "*" {
        return Ok(Op::ALL.into_iter().filter(|o| !o.named_only()).collect());
    }
    if s == "admin.*" {
        return Ok(Op::ALL
            .into_iter()
            .filter(|o| o.is_admin() && !o.named_only())
            .collect());
    }
    Op::ALL
        .into_iter()
        .find(|o| o.name() == s)
        .map(|o| vec![o])
        .ok_or_else(|| {
            let names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
            format!(
                "unknown operation {s:?} (one of {}, admin.*, *)",
                names.join(", ")
            )
        })
}

fn patterns(list: &[String], what: &str) -> Result<Vec<Pattern>, String> {
    list.iter()
        .map(|p| {
            if p.is_empty() || p.len() > 128 {
                Err(format!("{what}: pattern {p:?} must be 1 to 128 characters"))
            } else if !can_match_a_name(p) {
                Err(format!(
                    "{what}: pattern {p:?} matches no valid name (names are \
                     [a-z0-9][a-z0-9._-]{{0,63}}; \"*\" matches any run of characters)"
                ))
            } else {
                Ok(Pattern(p.clone()))
            }
        })
        .collect()
}

/// True when some valid key or profile name (`[a-z0-9][a-z0-9._-]{0,63}`,
/// [`crate::keys::validate_name`]) matches the pattern: a grant that can
/// never apply is a mistake, not a policy.
fn can_match_a_name(p: &str) -> bool {
    let literals: Vec<u8> = p.bytes().filter(|&b| b != b'*').collect();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b);
    let leading = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !literals.iter().all(|&b| allowed(b)) || literals.len() > 64 {
        return false;
    }
    match p.as_bytes()[0] {
        // A leading `*` can supply the first character while there is room.
        b'*' => literals.len() < 64 || literals.first().is_none_or(|&b| leading(b)),
        b => leading(b),
    }
}

/// The operations a grant names, and what it must name for each to mean
/// something: key operations need `keys`, profile operations `profiles`,
/// and a pattern list no named operation uses is refused too.
fn check_grant(g: &GrantConfig, ops: &[Op], what: &str) -> Result<(), String> {
    let wildcard = g.operations.iter().any(|o| o == "*");
    let key_ops = ops.iter().any(|o| !o.on_profile());
    let profile_ops = ops.iter().any(|o| o.on_profile());
    if g.keys.is_empty() && g.profiles.is_empty() {
        return Err(format!(
            "{what}: name the keys or profiles it covers (\"*\" for all)"
        ));
    }
    // `*` covers both kinds: either list makes it useful.
    if wildcard {
        return Ok(());
    }
    let list = |on_profile: bool| {
        let named: Vec<_> = ops
            .iter()
            .filter(|o| o.on_profile() == on_profile)
            .map(|o| o.name())
            .collect();
        match named.len() {
            1 => format!("operation {} acts", named[0]),
            _ => format!("operations {} act", named.join(", ")),
        }
    };
    if key_ops && g.keys.is_empty() {
        return Err(format!(
            "{what}: {} on keys, but the grant names no keys, so it grants nothing for \
             them: add keys = [...]",
            list(false)
        ));
    }
    if profile_ops && g.profiles.is_empty() {
        return Err(format!(
            "{what}: {} on profiles, but the grant names no profiles, so it grants \
             nothing for them: add profiles = [...]",
            list(true)
        ));
    }
    if !key_ops && !g.keys.is_empty() {
        return Err(format!(
            "{what}.keys: none of the grant's operations acts on keys (http_sign, \
             http_verify and http_profiles take profiles = [...])"
        ));
    }
    if !profile_ops && !g.profiles.is_empty() {
        return Err(format!(
            "{what}.profiles: none of the grant's operations acts on profiles (only \
             http_sign, http_verify and http_profiles do; the others take keys = [...])"
        ));
    }
    Ok(())
}
