//! The cgroups of `mwanctl use` (mwan_proto::cgroup): one per WAN, made
//! when the WAN first appears and kept (a `use` may still run in it; an
//! empty cgroup costs the kernel little). Their ids go into the plan.

use mwan_core::plan::UseCgroup;
use mwan_proto::cgroup;
use std::path::PathBuf;

#[derive(Default)]
pub struct UseCgroups {
    /// None until first needed; Some(None) when there is no cgroup2.
    root: Option<Option<PathBuf>>,
    /// A few WANs: a list is smaller code than a map.
    made: Vec<UseCgroup>,
}

impl UseCgroups {
    /// The cgroups of `wans`, made as needed.
    pub fn of<'a>(&mut self, wans: impl Iterator<Item = &'a str>) -> Vec<UseCgroup> {
        let root = self.root.get_or_insert_with(|| match cgroup::root() {
            Ok(root) => Some(root),
            Err(e) => {
                log::info!("no cgroup2 hierarchy ({e}): 'mwanctl use' unavailable");
                None
            }
        });
        let Some(root) = root else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for wan in wans {
            if !self.made.iter().any(|c| c.wan == wan) {
                let path = cgroup::use_path(wan);
                let dir = root.join(&path);
                match std::fs::create_dir_all(&dir).and_then(|()| cgroup::id(&dir)) {
                    Ok(id) => {
                        self.made.push(UseCgroup {
                            wan: wan.to_string(),
                            level: cgroup::USE_LEVEL,
                            path,
                            id,
                        });
                    }
                    Err(e) => log::warn!("{}: {e}: 'mwanctl use {wan}' unavailable", dir.display()),
                }
            }
            out.extend(self.made.iter().find(|c| c.wan == wan).cloned());
        }
        out
    }
}
