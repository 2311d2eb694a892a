//! The data plane's sysctls, and where their values from before mwand
//! are kept: the comment of table `inet mwan`, so a restarted mwand
//! restores the admin's values, not its own.

use mwan_netlink::nft::Nft;
use mwan_netlink::sysctl::Saved;

/// The comment of table `inet mwan` that keeps the sysctl values from
/// before mwand: `sysctl before mwand: ipv4/fib_multipath_hash_policy=0 ...`
/// (paths under /proc/sys/net). The table is created right after start and
/// survives a crash of mwand, so a restarted mwand reads the admin's values
/// there instead of recording ours as the originals; nothing goes to a file.
const SYSCTL_COMMENT: &str = "sysctl before mwand:";
const SYSCTL_ROOT: &str = "/proc/sys/net/";

fn sysctl_comment(originals: &[(String, String)]) -> String {
    let mut c = SYSCTL_COMMENT.to_string();
    for (path, value) in originals {
        c += &format!(
            " {}={value}",
            path.strip_prefix(SYSCTL_ROOT).unwrap_or(path)
        );
    }
    c
}

/// The originals a previous mwand recorded, or None if `comment` is not
/// ours or names anything outside /proc/sys/net.
fn parse_sysctl_comment(comment: &str) -> Option<Vec<(String, String)>> {
    let rest = comment.strip_prefix(SYSCTL_COMMENT)?;
    rest.split_whitespace()
        .map(|kv| {
            let (path, value) = kv.split_once('=')?;
            let safe = !path.is_empty()
                && !path.split('/').any(|p| p.is_empty() || p == "..")
                && !value.is_empty();
            safe.then(|| (format!("{SYSCTL_ROOT}{path}"), value.to_string()))
        })
        .collect()
}

/// Sets the data plane's sysctls. Their values from before mwand come from
/// the comment of a table `inet mwan` a crashed mwand left, else from the
/// kernel now; the nft socket stores them in the table it creates.
pub(super) fn set_sysctls(nft: Option<&mut Nft>) -> Saved {
    let Some(nft) = nft else {
        let mut s = Saved::default();
        if let Err(e) = s.apply_dataplane_defaults() {
            log::warn!("sysctls: {e}");
        }
        return s;
    };
    let mut saved = match nft.table_comment() {
        Ok(Some(c)) => {
            match parse_sysctl_comment(&c) {
                Some(originals) => {
                    log::info!("sysctl values from before the previous mwand, kept in table inet mwan: {c}");
                    Saved::with_originals(originals)
                }
                None => Saved::default(),
            }
        }
        Ok(None) => Saved::default(),
        Err(e) => {
            log::warn!("reading table inet mwan's comment: {e}");
            Saved::default()
        }
    };
    if let Err(e) = saved.apply_dataplane_defaults() {
        log::warn!("sysctls: {e}");
    }
    if let Err(e) = nft.set_table_comment(&sysctl_comment(saved.originals())) {
        log::warn!("sysctl values from before mwand not kept in table inet mwan: {e}");
    }
    saved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_originals_survive_the_table_comment() {
        let originals = vec![
            (
                "/proc/sys/net/ipv4/fib_multipath_hash_policy".to_string(),
                "0".to_string(),
            ),
            (
                "/proc/sys/net/ipv6/fib_multipath_hash_policy".to_string(),
                "2".to_string(),
            ),
            (
                "/proc/sys/net/ipv4/conf/all/src_valid_mark".to_string(),
                "0".to_string(),
            ),
        ];
        let c = sysctl_comment(&originals);
        assert!(c.len() <= mwan_netlink::nft::TABLE_COMMENT_MAX, "{c}");
        assert_eq!(parse_sysctl_comment(&c), Some(originals));
    }

    #[test]
    fn foreign_or_unsafe_comments_are_not_taken_as_originals() {
        assert_eq!(parse_sysctl_comment("managed by someone else"), None);
        assert_eq!(
            parse_sysctl_comment("sysctl before mwand: ../../etc/x=1"),
            None
        );
        assert_eq!(parse_sysctl_comment("sysctl before mwand: ipv4//x=1"), None);
        assert_eq!(parse_sysctl_comment("sysctl before mwand: ipv4/x"), None);
        assert_eq!(parse_sysctl_comment("sysctl before mwand:"), Some(vec![]));
    }
}
