//! What an operator set at run time and a restart must not lose: manual
//! overrides and paused WANs. mwand rewrites `<run-dir>/state` atomically
//! on every change and reads it at start, before its first plan, so a
//! kill -9 or a procd respawn comes back with the same choices. The run dir
//! is on tmpfs: after a reboot only an override written to the config with
//! `--persistent` (globals option `override`) is back.
//!
//! Each WAN's last verdict is kept there too (issue 13, attack 6): a
//! restart resumes it, so traffic does not go back to a WAN known to be
//! dead while its new tracker fails `down` rounds again. The file is
//! rewritten every [`STATE_REFRESH_MS`] while a verdict is known, so its
//! time says when the verdict last held; one older than its lifetime
//! (mwan_core::health::verdict_lifetime) is dropped with a log line.
//!
//! ```text
//! override wan2            every policy on wan2
//! override wan1 balanced   policy balanced on wan1
//! pause wan3
//! verdict wan1 offline 81234 95300   verdict, since, saved (CLOCK_MONOTONIC ms)
//! ```

use super::{Daemon, Timer};
use crate::clock::now_ms;
use mwan_core::health::{saved_verdict_holds, HealthSettings, SavedVerdict, Verdict};
use mwan_core::Millis;
use std::io::Write;
use std::path::Path;

const STATE_FILE: &str = "state";
/// How often the verdicts' save time is renewed (tmpfs: a small write).
const STATE_REFRESH_MS: Millis = 5_000;

impl Daemon {
    /// Writes the overrides and paused WANs (a temporary file renamed over
    /// the old one: a crash leaves the old or the new file, never half).
    pub(super) fn save_state(&mut self) {
        let mut text = String::new();
        for (wan, policy) in self.engine.all_overrides() {
            text += &format!("override {wan}");
            if let Some(p) = policy {
                text += &format!(" {p}");
            }
            text.push('\n');
        }
        for wan in &self.paused {
            text += &format!("pause {wan}\n");
        }
        let now = now_ms();
        let mut verdicts = false;
        for (name, wan) in &self.wans {
            if let Some((v, since)) = wan.verdict() {
                text += &format!("verdict {name} {} {since} {now}\n", v.as_str());
                verdicts = true;
            }
        }
        let path = self.opts.run_dir.join(STATE_FILE);
        if let Err(e) = write_atomically(&path, text.as_bytes()) {
            log::warn!("{}: {e}: a restart would lose overrides", path.display());
        }
        if verdicts {
            self.timers.arm(Timer::SaveState, now + STATE_REFRESH_MS);
        }
    }

    /// Takes back what [`Daemon::save_state`] wrote, or after a reboot (no
    /// state file) the config's persistent override. Entries naming what the
    /// config no longer has are dropped with a warning. Called once the
    /// WANs exist, so their saved verdicts are resumed here.
    pub(super) fn restore_state(&mut self, now: Millis) {
        let path = self.opts.run_dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) => match &self.config.globals.override_ {
                Some(wan) => format!("override {wan}\n"),
                None => return,
            },
        };
        for (n, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let known = |w: &str| self.config.interfaces.iter().any(|i| i.name == w);
            let restored = match words[..] {
                ["override", wan, ref policy @ ..] if known(wan) && policy.len() < 2 => self
                    .engine
                    .set_override(
                        &self.config,
                        wan.into(),
                        policy.first().map(|p| p.to_string()),
                    )
                    .is_ok(),
                ["pause", wan] if known(wan) => self.paused.insert(wan.into()),
                ["verdict", wan, verdict, since, saved_at] => {
                    match (
                        self.wans.get_mut(wan),
                        Verdict::parse(verdict),
                        since.parse(),
                        saved_at.parse(),
                    ) {
                        (Some(w), Some(verdict), Ok(since), Ok(saved_at)) => {
                            let s = SavedVerdict {
                                verdict,
                                since,
                                saved_at,
                            };
                            let settings = HealthSettings::from_interface(w.config());
                            let holds = saved_verdict_holds(&s, &settings, now);
                            if holds {
                                w.resume(verdict, since, now);
                            }
                            log::info!(
                                "{wan}: {} verdict from before the restart ({} s old) {}",
                                verdict.as_str(),
                                now.saturating_sub(since) / 1000,
                                if holds {
                                    "resumed"
                                } else {
                                    "dropped: older than its lifetime, or from another boot"
                                }
                            );
                            continue;
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if restored {
                log::info!("restored from before the restart: {line}");
            } else {
                log::warn!("{}:{}: '{line}' ignored", path.display(), n + 1);
            }
        }
    }

    /// `--persistent`: sets (or with None removes) the globals option
    /// `override` in the config file, so LuCI and `uci show` see it and a
    /// reboot keeps it.
    pub(super) fn persist_override(&mut self, wan: Option<&str>) -> Result<(), String> {
        let path = &self.config_path;
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let edited = with_global_override(&text, wan);
        if edited != text {
            write_atomically(path, edited.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // The running config as the file now says: a reload sees no change.
        self.config.globals.override_ = wan.map(str::to_string);
        Ok(())
    }
}

/// Writes `path` through a temporary file renamed over it; the file keeps
/// its mode (the config is 0600).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    if let Ok(meta) = std::fs::metadata(path) {
        f.set_permissions(meta.permissions())?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `text` (UCI) with `option override` of the globals section set to `wan`
/// or removed; adds a globals section when there is none. Other lines stay
/// as they are.
fn with_global_override(text: &str, wan: Option<&str>) -> String {
    let mut out = String::new();
    let mut in_globals = false;
    let mut written = wan.is_none();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"config") {
            in_globals = words.get(1) == Some(&"globals");
        }
        if in_globals && words.get(..2) == Some(&["option", "override"][..]) {
            continue;
        }
        out += line;
        out.push('\n');
        if let (true, false, Some(wan)) = (in_globals, written, wan) {
            if words.first() == Some(&"config") {
                out += &format!("\toption override '{wan}'\n");
                written = true;
            }
        }
    }
    if let (false, Some(wan)) = (written, wan) {
        out += &format!("\nconfig globals 'globals'\n\toption override '{wan}'\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_override_is_one_option_of_the_globals_section() {
        let text = "config globals 'globals'\n\toption mmx_mask '0x3F00'\n\nconfig interface 'wan'\n\toption enabled '1'\n";
        let set = with_global_override(text, Some("wan"));
        assert_eq!(
            set,
            "config globals 'globals'\n\toption override 'wan'\n\toption mmx_mask '0x3F00'\n\nconfig interface 'wan'\n\toption enabled '1'\n"
        );
        // Set again: replaced, not doubled; cleared: the file as it was.
        let again = with_global_override(&set, Some("wan2"));
        assert_eq!(again.matches("option override").count(), 1);
        assert!(again.contains("option override 'wan2'"));
        assert_eq!(with_global_override(&again, None), text);
        // No globals section: one is added.
        let bare = "config interface 'wan'\n";
        let added = with_global_override(bare, Some("wan"));
        assert!(added.ends_with("\nconfig globals 'globals'\n\toption override 'wan'\n"));
        let parsed = mwan_core::config::parse("test", &added).unwrap();
        assert_eq!(parsed.config.globals.override_.as_deref(), Some("wan"));
    }
}
