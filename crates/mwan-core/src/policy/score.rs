//! Score mode: the single best-scoring usable member of a family, with
//! hysteresis, fail-back damping and a minimum dwell time. Steps of
//! [`resolve_score`]: say who has no score, list the scored members, then
//! either make a first choice or let the best challenge the current one,
//! and record the outcome with who stands by.

use super::{ActiveMember, Candidate, Choice, Hold, Why};
use crate::config::Family;
use crate::Millis;

#[derive(Debug, Clone, Copy)]
pub(super) struct Damping {
    pub(super) hysteresis: f64,
    pub(super) min_stable_ms: Millis,
    pub(super) now: Millis,
}

/// (index into candidates, score) of a usable member with a score.
type Scored = (usize, f64);

pub(super) fn resolve_score(
    family: Family,
    candidates: &[Candidate],
    damping: Damping,
    slot: &mut Option<Choice>,
    active: &mut Vec<ActiveMember>,
    why: &mut Vec<Why>,
) {
    no_score_reasons(candidates, why);
    let scored = scored_members(candidates);
    let chosen = match current_choice(candidates, &scored, slot) {
        None => first_choice(candidates, &scored, damping, slot),
        Some(current) => challenge(family, candidates, &scored, damping, current, slot, why),
    };
    if let Some(choice) = chosen {
        record_choice(family, candidates, &scored, choice, active, why);
    }
}

/// Usable members without a score yet.
pub(super) fn no_score_reasons(candidates: &[Candidate], why: &mut Vec<Why>) {
    for c in candidates
        .iter()
        .filter(|c| c.usable() && c.score().is_none())
    {
        why.push(Why::NoScore {
            interface: c.interface.to_string(),
        });
    }
}

/// Usable members with a score, in candidate order.
pub(super) fn scored_members(candidates: &[Candidate]) -> Vec<Scored> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.usable())
        .filter_map(|(i, c)| c.score().map(|s| (i, s)))
        .collect()
}

/// When `c` will have been usable for min_stable (None: unknown).
fn stable_at(c: &Candidate, damping: Damping) -> Option<Millis> {
    c.view
        .and_then(|v| v.usable_since)
        .map(|t| t + damping.min_stable_ms)
}

fn is_stable(c: &Candidate, damping: Damping) -> bool {
    stable_at(c, damping).is_some_and(|t| t <= damping.now)
}

/// Lowest score; ties go to the lower metric, then to candidate order.
pub(super) fn best_of(
    candidates: &[Candidate],
    pool: impl Iterator<Item = Scored>,
) -> Option<Scored> {
    pool.fold(None::<Scored>, |best, (i, s)| match best {
        Some((bi, bs)) if bs < s || (bs == s && candidates[bi].metric <= candidates[i].metric) => {
            best
        }
        _ => Some((i, s)),
    })
}

/// The remembered choice, if it is still usable and scored: (index,
/// score, chosen since).
fn current_choice(
    candidates: &[Candidate],
    scored: &[Scored],
    slot: &Option<Choice>,
) -> Option<(usize, f64, Millis)> {
    let choice = slot.as_ref()?;
    scored
        .iter()
        .find(|(i, _)| candidates[*i].interface == choice.interface)
        .map(|&(i, s)| (i, s, choice.since))
}

/// First choice, or the current link was lost: prefer links that have been
/// usable for min_stable, else take any usable one. Remembered from now.
pub(super) fn first_choice(
    candidates: &[Candidate],
    scored: &[Scored],
    damping: Damping,
    slot: &mut Option<Choice>,
) -> Option<Scored> {
    let stable = best_of(
        candidates,
        scored
            .iter()
            .copied()
            .filter(|&(i, _)| is_stable(&candidates[i], damping)),
    );
    let pick = stable.or_else(|| best_of(candidates, scored.iter().copied()));
    *slot = pick.map(|(i, _)| Choice {
        interface: candidates[i].interface.to_string(),
        since: damping.now,
    });
    pick
}

/// What keeps the current choice (scoring `current_score`, chosen at
/// `since`) against a better-scoring `challenger`; None: switch.
pub(super) fn hold(
    damping: Damping,
    challenger: &Candidate,
    challenger_score: f64,
    current_score: f64,
    since: Millis,
) -> Option<Hold> {
    let Damping {
        hysteresis,
        min_stable_ms,
        now,
    } = damping;
    if challenger_score + hysteresis >= current_score {
        Some(Hold::Hysteresis { hysteresis })
    } else if !is_stable(challenger, damping) {
        let until = stable_at(challenger, damping).unwrap_or(now + min_stable_ms);
        Some(Hold::ChallengerNotStable { until })
    } else if since + min_stable_ms > now {
        Some(Hold::Dwell {
            until: since + min_stable_ms,
        })
    } else {
        None
    }
}

/// The best member challenges the current choice: a held challenge is a
/// reason; a won one is remembered from now.
fn challenge(
    family: Family,
    candidates: &[Candidate],
    scored: &[Scored],
    damping: Damping,
    (cur, cur_score, since): (usize, f64, Millis),
    slot: &mut Option<Choice>,
    why: &mut Vec<Why>,
) -> Option<Scored> {
    let (bi, bs) = match best_of(candidates, scored.iter().copied()) {
        Some((bi, bs)) if bi != cur && bs < cur_score => (bi, bs),
        _ => return Some((cur, cur_score)),
    };
    match hold(damping, &candidates[bi], bs, cur_score, since) {
        Some(hold) => {
            why.push(Why::ScoreHeld {
                family,
                current: candidates[cur].interface.to_string(),
                challenger: candidates[bi].interface.to_string(),
                current_score: cur_score,
                challenger_score: bs,
                hold,
            });
            Some((cur, cur_score))
        }
        None => {
            *slot = Some(Choice {
                interface: candidates[bi].interface.to_string(),
                since: damping.now,
            });
            Some((bi, bs))
        }
    }
}

/// The chosen member becomes active; the other scored members (but a held
/// challenger, already named) stand by, best first.
pub(super) fn record_choice(
    family: Family,
    candidates: &[Candidate],
    scored: &[Scored],
    (i, s): Scored,
    active: &mut Vec<ActiveMember>,
    why: &mut Vec<Why>,
) {
    why.push(Why::ScoreBest {
        family,
        interface: candidates[i].interface.to_string(),
        score: s,
    });
    active.push(candidates[i].active(family));
    let held: Vec<&str> = why
        .iter()
        .filter_map(|w| match w {
            Why::ScoreHeld {
                family: f,
                challenger,
                ..
            } if *f == family => Some(challenger.as_str()),
            _ => None,
        })
        .collect();
    let mut waiting: Vec<(String, f64)> = scored
        .iter()
        .filter(|&&(j, _)| j != i && !held.contains(&candidates[j].interface))
        .map(|&(j, s)| (candidates[j].interface.to_string(), s))
        .collect();
    crate::sort::sort_by(&mut waiting, |a, b| a.1.total_cmp(&b.1));
    if !waiting.is_empty() {
        why.push(Why::ScoreStandby { family, waiting });
    }
}

#[cfg(test)]
#[path = "score_tests.rs"]
mod tests;
