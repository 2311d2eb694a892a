//! Message format (`FILE:LINE: section 'NAME' (TYPE): option 'OPT': ...`),
//! line numbers (LF, CRLF, continuation, no final newline), every problem
//! reported at once, warnings apart from errors, references.

use mwan_core::config::*;

fn problems(text: &str) -> Vec<String> {
    match parse("/etc/config/mwan3", text) {
        Ok(l) => panic!("accepted; warnings: {:?}", l.warnings),
        Err(r) => r.problems.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    match parse("/etc/config/mwan3", text) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(r) => panic!("rejected:\n{r}"),
    }
}

#[test]
fn message_format_is_file_line_section_option_message() {
    let text = "config interface 'wan'\n\toption enabled '1'\n\toption interval 'fast'\n";
    assert_eq!(
        problems(text),
        ["/etc/config/mwan3:3: section 'wan' (interface): option 'interval': 'fast' is not a duration: expected seconds from 0.001 to 3600, with up to 3 decimals (e.g. 10 or 0.2)"]
    );
    // Without an option.
    assert_eq!(
        problems("config member\n\toption interface 'wan'\n"),
        ["/etc/config/mwan3:1: section '@member[0]' (member): anonymous member section: expected a name ('config member NAME'), so that other sections can refer to it"]
    );
    // Without a section.
    assert_eq!(
        problems("\toption enabled '1'\n"),
        ["/etc/config/mwan3:1: 'option' outside of a section: expected a 'config TYPE [NAME]' line before it"]
    );
}

#[test]
fn diagnostic_fields_and_display_agree() {
    let r = parse("f", "config rule 'r'\n\toption use_policy 'nope'\n").unwrap_err();
    let d = &r.problems[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!((d.source.as_str(), d.line), ("f", 2));
    assert_eq!(d.section, Some(("r".into(), "rule".into())));
    assert_eq!(d.option.as_deref(), Some("use_policy"));
    assert_eq!(
        d.to_string(),
        format!(
            "f:2: section 'r' (rule): option 'use_policy': {}",
            d.message
        )
    );
    assert!(d.message.contains("policy 'nope' is not defined"), "{d}");
}

const BROKEN: &str = "# a config with one problem per kind, each on its own line
config globals 'globals'
\toption mmx_mask 'wide'

config interface 'wan'
\toption enabled '1'
\tlist track_ip '192.0.2.1'
\toption timeout '-2'
\toption family 'ipv5'
\toption colour 'blue'

config member 'm1'
\toption interface 'wan'
\toption weight 'heavy'

config policy 'p'
\tlist use_member 'm1'
\toption last_resort 'panic'

config rule 'r1'
\toption proto 'tcp'
\toption dest_port '99999'
\toption dest_ip '203.0.113.0/40'
\toption use_policy 'missing'

config strange 'x'
";

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let r = parse("t", BROKEN).unwrap_err();
    let got: Vec<(usize, Option<&str>)> = r
        .problems
        .iter()
        .map(|d| (d.line, d.option.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (3, Some("mmx_mask")),
            (8, Some("timeout")),
            (9, Some("family")),
            (14, Some("weight")),
            (18, Some("last_resort")),
            (22, Some("dest_port")),
            (23, Some("dest_ip")),
            (24, Some("use_policy")),
        ],
        "{r}"
    );
    let warned: Vec<(usize, Option<&str>)> = r
        .warnings
        .iter()
        .map(|d| (d.line, d.option.as_deref()))
        .collect();
    assert_eq!(
        warned,
        [(10, Some("colour")), (26, None)],
        "{:?}",
        r.warnings
    );
    assert!(r.warnings.iter().all(|w| w.severity == Severity::Warning));
    assert!(r.problems.iter().all(|p| p.severity == Severity::Error));
}

#[test]
fn crlf_and_lf_files_give_the_same_lines() {
    let crlf = BROKEN.replace('\n', "\r\n");
    let lf = parse("t", BROKEN).unwrap_err();
    let cr = parse("t", &crlf).unwrap_err();
    assert_eq!(lf, cr);
    // Values never keep the CR.
    let ok = parse("t", "config interface 'wan'\r\n\toption device eth1\r\n").unwrap();
    assert_eq!(ok.config.interfaces[0].device.as_deref(), Some("eth1"));
}

#[test]
fn lines_count_through_comments_continuations_and_missing_final_newline() {
    let text =
        "# c\n\nconfig interface 'wan' # comment\n\toption \\\n\t\tdown 'x'\n\n\toption up 'y'";
    let r = parse("t", text).unwrap_err();
    let lines: Vec<usize> = r.problems.iter().map(|d| d.line).collect();
    assert_eq!(lines, [5, 7], "{r}");
}

#[test]
fn unknown_options_and_sections_are_warnings() {
    let w = warnings(
        "config interface 'wan'\n\toption colour 'blue'\nconfig condition\n\toption x 'y'\n",
    );
    assert_eq!(
        w,
        [
            "/etc/config/mwan3:2: section 'wan' (interface): option 'colour': unknown option for an interface section, ignored: expected one of enabled, initial_state, family, track_method, track_ip, reliability, count, timeout, interval, failure_interval, recovery_interval, keep_failure_interval, down, up, size, max_ttl, check_quality, failure_latency, recovery_latency, failure_loss, recovery_loss, httping_ssl, flush_conntrack, device, gateway, quality_bias, quality_loss_divisor, quality_loss_limit, quality_time_constant, quality_smoothing, probe_budget_per_minute, probe_budget_bytes_per_day",
            "/etc/config/mwan3:3: section '@condition[0]' (condition): unknown section type 'condition', ignored: expected globals, interface, member, policy or rule",
        ]
    );
}

#[test]
fn dangling_member_and_policy_references_are_warnings_and_dropped() {
    let text = "config interface 'wan'\nconfig member 'm_gone'\n\toption interface 'wan9'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm_gone'\n\tlist use_member 'm'\n\tlist use_member 'm_never'\n";
    let l = parse("t", text).unwrap();
    assert_eq!(l.config.members.len(), 1);
    assert_eq!(l.config.policies[0].use_member, ["m"]);
    let w: Vec<(usize, &str)> = l
        .warnings
        .iter()
        .map(|d| (d.line, d.section.as_ref().unwrap().0.as_str()))
        .collect();
    assert_eq!(w, [(3, "m_gone"), (9, "p")]);
    assert!(
        l.warnings[0]
            .message
            .contains("interface 'wan9' is not defined"),
        "{}",
        l.warnings[0]
    );
    assert!(
        l.warnings[1]
            .message
            .contains("member 'm_never' is not defined"),
        "{}",
        l.warnings[1]
    );
}

#[test]
fn family_mismatch_between_rule_and_policy_is_a_warning() {
    let text = "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm'\nconfig rule 'v6'\n\toption family 'ipv6'\n\toption use_policy 'p'\n";
    let w = warnings(text);
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("/etc/config/mwan3:8: section 'v6' (rule): option 'use_policy': policy 'p' has no ipv6 member"), "{}", w[0]);
}

#[test]
fn track_ip_of_the_wrong_family_is_an_error() {
    let p =
        problems("config interface 'wan6'\n\toption family 'ipv6'\n\tlist track_ip '192.0.2.1'\n");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains(
            ":3: section 'wan6' (interface): option 'track_ip': '192.0.2.1' is an IPv4 address"
        ),
        "{}",
        p[0]
    );
}

#[test]
fn stray_lines_warn_and_broken_commands_fail() {
    let text = "config interface 'wan'\nroot@GL-MT6000:~# \n\toption enabled '1\n\toption up\n";
    let r = parse("t", text).unwrap_err();
    let w: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "t:2: not a UCI line (starts with 'root@GL-MT6000:~'; expected config, option, list or package): ignored, as 'uci -S' does",
            "t:4: section 'wan' (interface): option 'up': 'option up' has no value: the option is unset and its default applies (as uci does); expected 'option NAME VALUE'",
        ]
    );
    let p: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        p,
        ["t:3: section 'wan' (interface): unterminated 'quoted' string: expected a closing ' on the same line"]
    );
}

#[test]
fn empty_values_unset_like_uci() {
    let l = parse(
        "t",
        "config interface 'wan'\n\toption up '2'\n\toption up ''\n\tlist track_ip ''\n",
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.interfaces[0].up, 5);
    assert!(l.config.interfaces[0].track_ip.is_empty());
}

#[test]
fn repeated_options_and_sections_merge_as_uci_does() {
    let text = "config interface 'wan'\n\toption up '2'\n\toption up '3'\nconfig interface 'wan'\n\toption down '4'\n";
    let l = parse("t", text).unwrap();
    let i = &l.config.interfaces[0];
    assert_eq!((l.config.interfaces.len(), i.up, i.down), (1, 3, 4));
    let lines: Vec<usize> = l.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [3, 4]);
}

#[test]
fn same_name_for_two_section_types_is_an_error() {
    let p = problems("config interface 'wan'\nconfig member 'wan'\n\toption interface 'wan'\n");
    assert!(p[0].starts_with("/etc/config/mwan3:2: section name 'wan' is already used by the interface section at line 1"), "{}", p[0]);
}

#[test]
fn unreadable_file_is_a_problem_not_a_panic() {
    let r = load(std::path::Path::new("/nonexistent/mwan3")).unwrap_err();
    assert_eq!(r.problems.len(), 1);
    assert!(
        r.problems[0]
            .to_string()
            .starts_with("/nonexistent/mwan3:0: cannot read the file:"),
        "{}",
        r.problems[0]
    );
}

#[test]
fn summary_shows_effective_values() {
    let text = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n\toption interval '0.5'\nconfig member 'm'\n\toption interface 'wan'\n\toption weight '3'\nconfig policy 'p'\n\tlist use_member 'm'\nconfig rule\n\toption proto 'tcp'\n\toption dest_port '443'\n\toption sticky '1'\n\toption use_policy 'p'\n";
    let s = summary(&parse("cfg", text).unwrap().config);
    let expected = "cfg: 1 interface, 1 member, 1 policy, 1 rule
globals: mmx_mask 0x3F00, logging off (loglevel notice), source_routing off, rt_table_lookup -
interface wan: enabled, ipv4, initial online, ping 192.0.2.1 (reliability 1, count 1, size 56, max_ttl 60), timeout 4s, interval 0.5s (failure 0.5s, recovery 0.5s), down 5, up 5
member m: interface wan, metric 1, weight 3
policy p: m (wan metric 1 weight 3); mode tiers; last_resort unreachable
rule @rule[0]: any tcp dport 443, sticky 600s -> p
";
    assert_eq!(s, expected);
}
