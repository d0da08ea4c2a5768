//! Who talks to whom: the conversation plan of a traffic run, decided before any I/O.
//!
//! A plan is a list of conversations (direct pairs without repeats, groups of a chosen
//! size) over user indices, plus the send slots (member, conversation) the scheduler
//! draws from. Pure and seedable, so its shape is unit-tested; creating the
//! conversations on the server is `setup`'s job.

use rand::seq::index::sample;
use rand::Rng;
use std::collections::HashSet;

/// One conversation to create. `members[0]` creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedConversation {
    pub is_group: bool,
    pub members: Vec<usize>,
    /// Members that send into it (all members, except in a fan-out run).
    pub senders: Vec<usize>,
}

impl PlannedConversation {
    /// Devices that should receive each message: every member but the sender (one
    /// device per simulated user).
    pub fn recipients_per_message(&self) -> u64 {
        self.members.len().saturating_sub(1) as u64
    }
}

/// `conversations` conversations over `users` users: `round(conversations * group_ratio)`
/// groups of `group_members` (capped at `users`), the rest distinct direct pairs (fewer
/// if the users cannot form that many pairs).
pub fn plan_mixed(
    users: usize,
    conversations: usize,
    group_ratio: f64,
    group_members: usize,
    random: &mut impl Rng,
) -> Vec<PlannedConversation> {
    if users < 2 {
        return Vec::new();
    }
    let group_count = ((conversations as f64) * group_ratio.clamp(0.0, 1.0)).round() as usize;
    let direct_count = conversations
        .saturating_sub(group_count)
        .min(users * (users - 1) / 2);
    let group_members = group_members.clamp(2, users);
    let mut plan = Vec::with_capacity(group_count + direct_count);
    for _ in 0..group_count {
        let members = sample(random, users, group_members).into_vec();
        plan.push(PlannedConversation {
            is_group: true,
            senders: members.clone(),
            members,
        });
    }
    let mut pairs_taken = HashSet::with_capacity(direct_count);
    while pairs_taken.len() < direct_count {
        let first = random.random_range(0..users);
        let second = random.random_range(0..users);
        if first == second || !pairs_taken.insert((first.min(second), first.max(second))) {
            continue;
        }
        plan.push(PlannedConversation {
            is_group: false,
            members: vec![first, second],
            senders: vec![first, second],
        });
    }
    plan
}

/// The fan-out scenario: one group of users `0..group_size`, with the first `senders`
/// of them sending.
pub fn plan_fanout(group_size: usize, senders: usize) -> Vec<PlannedConversation> {
    let members: Vec<usize> = (0..group_size).collect();
    let senders = members[..senders.clamp(1, group_size.max(1)).min(group_size)].to_vec();
    vec![PlannedConversation {
        is_group: true,
        members,
        senders,
    }]
}

/// Every (sender, conversation index) pair, the scheduler's lottery.
pub fn send_slots(plan: &[PlannedConversation]) -> Vec<(u32, u32)> {
    plan.iter()
        .enumerate()
        .flat_map(|(conversation_index, conversation)| {
            conversation
                .senders
                .iter()
                .map(move |&sender| (sender as u32, conversation_index as u32))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    /// The mix has the asked number of groups of the asked size with distinct members,
    /// and direct pairs that never repeat.
    #[test]
    fn mixed_plan_has_the_asked_shape() {
        let mut random = StdRng::seed_from_u64(3);
        let plan = plan_mixed(50, 40, 0.25, 6, &mut random);
        assert_eq!(plan.len(), 40);
        let groups: Vec<_> = plan.iter().filter(|planned| planned.is_group).collect();
        assert_eq!(groups.len(), 10);
        for group in &groups {
            assert_eq!(group.members.len(), 6);
            let distinct: HashSet<_> = group.members.iter().collect();
            assert_eq!(distinct.len(), 6);
            assert_eq!(group.recipients_per_message(), 5);
        }
        let mut pairs = HashSet::new();
        for direct in plan.iter().filter(|planned| !planned.is_group) {
            let (first, second) = (direct.members[0], direct.members[1]);
            assert_ne!(first, second);
            assert!(pairs.insert((first.min(second), first.max(second))));
            assert!(first < 50 && second < 50);
        }
        assert_eq!(send_slots(&plan).len(), 10 * 6 + 30 * 2);
    }

    /// With few users there are only so many pairs; the plan stops there.
    #[test]
    fn direct_pairs_are_capped_by_the_users() {
        let mut random = StdRng::seed_from_u64(9);
        let plan = plan_mixed(4, 100, 0.0, 3, &mut random);
        assert_eq!(plan.len(), 6);
        assert!(plan_mixed(1, 10, 0.5, 3, &mut random).is_empty());
        let oversize_groups = plan_mixed(3, 2, 1.0, 10, &mut random);
        assert!(oversize_groups.iter().all(|group| group.members.len() == 3));
    }

    /// Fan-out: one group of K, the first S send, each message reaches K-1 devices.
    #[test]
    fn fanout_plan() {
        let plan = plan_fanout(100, 5);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].members.len(), 100);
        assert_eq!(plan[0].senders, vec![0, 1, 2, 3, 4]);
        assert_eq!(plan[0].recipients_per_message(), 99);
        assert_eq!(send_slots(&plan).len(), 5);
        assert_eq!(plan_fanout(3, 0)[0].senders, vec![0]);
        assert_eq!(plan_fanout(3, 10)[0].senders, vec![0, 1, 2]);
    }
}
