//! Proptest strategies drawing the ops of the property test: any op, bad
//! inputs included, naming pages by index so that a sequence drawn without
//! knowing the state still means something in every state.

use proptest::prelude::*;

use super::ops::{BadId, BulkFlaw, End, Op, Patch, Slot, Step, Target};

pub fn bad_id() -> impl Strategy<Value = BadId> {
    prop_oneof![
        (0u64..3).prop_map(BadId::Reserved),
        (0u64..5).prop_map(BadId::PastEnd),
        Just(BadId::Huge),
        any::<usize>().prop_map(BadId::Stale),
    ]
}

pub fn flaw() -> impl Strategy<Value = BulkFlaw> {
    prop_oneof![
        4 => Just(BulkFlaw::None),
        1 => any::<usize>().prop_map(BulkFlaw::Duplicate),
        1 => bad_id().prop_map(BulkFlaw::Bad),
    ]
}

pub fn patch() -> impl Strategy<Value = Patch> {
    (any::<u16>(), any::<u16>(), any::<u64>()).prop_map(|(start, len, seed)| Patch::Span {
        start,
        len,
        seed,
    })
}

fn live() -> impl Strategy<Value = Target> {
    any::<usize>().prop_map(Target::Live)
}

fn fresh() -> impl Strategy<Value = Target> {
    any::<usize>().prop_map(Target::Fresh)
}

fn slot() -> impl Strategy<Value = Slot> {
    any::<usize>().prop_map(Slot::Live)
}

pub fn op() -> impl Strategy<Value = Op> {
    let lives = || proptest::collection::vec(live(), 1..12);
    let slots = || proptest::collection::vec(slot(), 1..12);
    prop_oneof![
        8 => Just(Op::Alloc),
        4 => live().prop_map(Op::Free),
        1 => live().prop_map(Op::FreeTwice),
        2 => bad_id().prop_map(Op::FreeBad),
        1 => bad_id().prop_map(Op::GetBad),
        3 => prop_oneof![4 => 1usize..40, 1 => 40usize..400].prop_map(Op::AllocBulk),
        3 => (lives(), flaw()).prop_map(|(p, f)| Op::FreeBulk(p, f)),
        1 => (any::<u16>(), 1usize..300).prop_map(|(s, n)| Op::FreeRun(s, n)),
        1 => Just(Op::BadCounts),
        6 => (live(), patch()).prop_map(|(t, p)| Op::Write(t, p)),
        4 => Just(Op::AllocProtected),
        2 => (1usize..24).prop_map(Op::AllocProtectedBulk),
        3 => slot().prop_map(Op::FreeProtected),
        2 => (slots(), flaw()).prop_map(|(p, f)| Op::FreeProtectedBulk(p, f)),
        1 => proptest::option::of(any::<usize>()).prop_map(Op::ProtectedBad),
        8 => (slot(), patch(), prop::bool::weighted(0.7))
            .prop_map(|(s, p, c)| Op::ProtectedWrite(s, p, c)),
        2 => Just(Op::Sync),
        2 => prop::bool::weighted(0.2).prop_map(Op::Reopen),
        1 => Just(Op::KillCopy),
        8 => (proptest::collection::vec(step(), 0..14), end())
            .prop_map(|(steps, end)| Op::Txn(steps, end)),
        2 => prop::bool::weighted(0.3).prop_map(Op::Shrink),
        1 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        1 => proptest::option::of(any::<usize>()).prop_map(Op::Copy),
    ]
}

pub fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        6 => Just(End::Commit),
        2 => Just(End::Drop),
        1 => Just(End::Rollback),
    ]
}

pub fn step() -> impl Strategy<Value = Step> {
    let lives = || proptest::collection::vec(live(), 1..12);
    // 170 and more written pages overflow a 4 KiB root's check list, 40 and
    // more a 1 KiB root's.
    let written = prop_oneof![12 => 1usize..6, 2 => 40usize..60, 1 => 170usize..240];
    prop_oneof![
        6 => Just(Step::Alloc),
        2 => (1usize..24).prop_map(Step::AllocBulk),
        3 => (written, patch()).prop_map(|(n, p)| Step::AllocWrite(n, p)),
        4 => live().prop_map(Step::Free),
        1 => live().prop_map(Step::FreeTwice),
        2 => (lives(), flaw()).prop_map(|(p, f)| Step::FreeBulk(p, f)),
        2 => bad_id().prop_map(Step::FreeBad),
        1 => bad_id().prop_map(Step::GetBad),
        6 => (fresh(), patch()).prop_map(|(t, p)| Step::Write(t, p)),
        1 => any::<usize>().prop_map(Step::WriteCommitted),
        1 => any::<usize>().prop_map(Step::WriteFreed),
        1 => Just(Step::BadCounts),
        3 => Just(Step::AllocProtected),
        2 => slot().prop_map(Step::FreeProtected),
        5 => (slot(), patch()).prop_map(|(s, p)| Step::WriteProtected(s, p)),
        1 => proptest::option::of(any::<usize>()).prop_map(Step::ProtectedBad),
        3 => (
            proptest::collection::vec((fresh(), patch()), 1..5),
            proptest::collection::vec(live(), 0..4),
            prop::bool::weighted(0.4),
        )
            .prop_map(|(w, r, c)| Step::Pages(w, r, c)),
        1 => Just(Step::KillCopy),
        2 => (1usize..5).prop_map(|n| Step::Relocate((0..n).map(Target::Top).collect())),
        4 => (0usize..3, 1usize..12, any::<u64>()).prop_map(|(c, n, s)| Step::SubAlloc(c, n, s)),
        3 => any::<usize>().prop_map(Step::SubFree),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(i, s)| Step::SubRewrite(i, s)),
        1 => (any::<usize>(), any::<u64>()).prop_map(|(i, r)| Step::SubBad(i, r)),
    ]
}

pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max)
}
