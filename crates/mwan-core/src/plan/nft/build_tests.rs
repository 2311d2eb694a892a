//! One test per step of [`build`](super::build), on the fixture of
//! nft/tests.rs (sticky_https -> balanced, video (ipset) -> only2, ports
//! (FIB), default_rule (FIB); wan1 eth1, wan2 eth2, wan6 eth1).

use super::*;
use crate::plan::nft::tests::fixture;
use crate::plan::UseCgroup;

fn text(rules: &[NftRule]) -> Vec<String> {
    rules.iter().map(ToString::to_string).collect()
}

#[test]
fn sticky_policies_take_the_longest_timeout_of_their_rules() {
    let (_, mut plan) = fixture();
    let balanced = plan.target_marks[&TargetKey::Policy("balanced".into())];
    assert_eq!(
        sticky_policies(&plan),
        BTreeMap::from([("balanced".to_string(), (balanced, 300))])
    );
    let mut longer = plan.rules[0].clone();
    longer.sticky_timeout = Some(900);
    plan.rules.push(longer);
    assert_eq!(sticky_policies(&plan)["balanced"], (balanced, 900));
}

#[test]
fn sticky_sets_one_per_member_wan_and_ipsets_one_per_family() {
    let (config, plan) = fixture();
    let sticky = sticky_policies(&plan);
    let names: Vec<String> = sticky_sets(&plan, &config, &sticky)
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "set sticky_balanced_wan1 { type ipv4_addr; flags dynamic,timeout; timeout 300s; }",
            "set sticky_balanced_wan2 { type ipv4_addr; flags dynamic,timeout; timeout 300s; }",
            "set sticky_balanced_wan6 { type ipv6_addr; flags dynamic,timeout; timeout 300s; }",
        ]
    );
    let (_, mut plan) = fixture();
    // A second rule on the same ipset adds no set.
    let again = plan.rules[1].clone();
    plan.rules.push(again);
    let sets: Vec<(String, Family)> = ipset_sets(&plan)
        .into_iter()
        .map(|s| (s.name, s.family))
        .collect();
    assert_eq!(
        sets,
        [
            ("video".to_string(), Family::Ipv4),
            ("video_v6".to_string(), Family::Ipv6)
        ]
    );
}

#[test]
fn prerouting_and_output_skip_marked_restore_pins_then_walk() {
    let (_, plan) = fixture();
    let pre = text(&prerouting_rules(&plan));
    let out = text(&output_rules(&plan));
    // skip + 3 restores + 3 inbound pins + jump; output has no inbound pins.
    assert_eq!(pre.len(), 8);
    assert_eq!(out.len(), 5);
    for chain in [&pre, &out] {
        assert_eq!(chain[0], "meta mark & 0x3f00 != 0x0 return");
        assert_eq!(chain.last().unwrap(), "jump policy_rules");
        assert_eq!(chain[1..4], out[1..4]);
    }
    assert!(pre[4].starts_with("meta nfproto ipv4 iifname \"eth1\" ct mark set"));
}

/// `mwanctl use wan2`: sockets of wan2's cgroup get wan2's tracker mark
/// in output, after the skip and before the pins; a cgroup of a WAN the
/// plan does not have gives no rule; prerouting never has one.
#[test]
fn output_sends_a_use_cgroups_sockets_to_its_wan() {
    let (_, mut plan) = fixture();
    for (wan, id) in [("wan2", 4242), ("gone", 7)] {
        plan.use_cgroups.push(UseCgroup {
            wan: wan.into(),
            level: 2,
            path: format!("mwan/{wan}"),
            id,
        });
    }
    let out = output_rules(&plan);
    assert_eq!(out.len(), 6);
    let wan2 = plan.wans.iter().find(|w| w.interface == "wan2").unwrap();
    assert_eq!(
        out[1].to_string(),
        format!(
            "socket cgroupv2 level 2 \"mwan/wan2\" meta mark set meta mark & 0xffffc0ff | {:#x} return",
            wan2.tracker_mark
        )
    );
    assert!(matches!(
        out[1].matches[0],
        Match::SocketCgroupV2 { id: 4242, .. }
    ));
    assert!(!text(&prerouting_rules(&plan))
        .iter()
        .any(|r| r.contains("cgroupv2")));
}

#[test]
fn postrouting_records_sticky_choices_before_pinning() {
    let (config, mut plan) = fixture();
    plan.wans[1].device.clear();
    let sticky = sticky_policies(&plan);
    let post = text(&postrouting_rules(&plan, &config, &sticky));
    // Sticky: wan1 and wan6 (wan2 has no device); pins: 2 WANs x (0 and
    // the sticky mark).
    assert_eq!(post.len(), 6);
    assert!(post[0].contains("update @sticky_balanced_wan1"));
    assert!(post[1].contains("update @sticky_balanced_wan6"));
    assert!(post[2..].iter().all(|r| !r.contains("update")));
    assert!(post[2].contains("ct mark & 0x3f00 == 0x0 "));
}

#[test]
fn policy_rules_expand_each_rule_and_sticky_rules_get_a_chain() {
    let (config, plan) = fixture();
    let (rules, chains) = policy_rules(&plan, &config, &BTreeMap::new());
    // sticky_https 2 + video 2 + ports 2 + default_rule 1.
    assert_eq!(rules.len(), 7);
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0].name, "sticky_r0");
    assert_eq!(rules[0].verdict, Some(Verdict::Goto("sticky_r0".into())));
    assert!(rules[2]
        .actions
        .iter()
        .any(|a| matches!(a, Action::SetMetaMark { .. })));
}

#[test]
fn a_sticky_chain_checks_every_member_set_then_marks_for_the_policy() {
    let (config, plan) = fixture();
    let chain = sticky_chain(&plan, &config, 4, "balanced", 0x500);
    assert_eq!(chain.name, "sticky_r4");
    let body = text(&chain.rules);
    assert_eq!(body.len(), 4);
    assert!(body[2].starts_with("meta nfproto ipv6 ip6 saddr @sticky_balanced_wan6 "));
    assert_eq!(
        body[3],
        "meta mark set meta mark & 0xffffc0ff | 0x500 ct mark set ct mark & 0xffffc0ff | 0x500"
    );
}

#[test]
fn check_names_refuses_a_name_the_kernel_would() {
    let (config, plan) = fixture();
    let mut table = build(&plan, &config, &BTreeMap::new()).unwrap();
    assert_eq!(check_names(&table), Ok(()));
    table.sets[0].name = "s".repeat(MAX_NAME_LEN + 1);
    assert!(matches!(
        check_names(&table),
        Err(NftPlanError::NameTooLong { what: "set", .. })
    ));
}
