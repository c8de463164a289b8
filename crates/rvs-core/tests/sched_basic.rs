//! Behaviour tests for the connection-count and round-robin schedulers
//! (rr, wrr, lc, wlc, sed, nq, fo, ovf, twos), driven only through
//! `new_scheduler` and the `Scheduler` trait. Expected picks are worked out by
//! hand from the kernel's algorithms or come from real-kernel observations.

use proptest::prelude::*;
use rvs_core::model::{DestId, SchedFlags};
use rvs_core::sched::{
    new_scheduler, DestChange, RandomSource, SchedContext, SchedDest, SchedPacket, Scheduler,
    XorShiftRng,
};
use std::net::{IpAddr, Ipv4Addr};

fn dest(id: u64, weight: i32) -> SchedDest {
    SchedDest {
        id: DestId(id),
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, id as u8)),
        port: 80,
        weight,
        last_weight: weight,
        overloaded: false,
        active: 0,
        inactive: 0,
    }
}

fn dest_with(id: u64, weight: i32, active: u32, inactive: u32) -> SchedDest {
    SchedDest {
        active,
        inactive,
        ..dest(id, weight)
    }
}

fn overloaded(mut d: SchedDest) -> SchedDest {
    d.overloaded = true;
    d
}

/// A random source that replays fixed numbers.
struct Fixed(Vec<u32>);

impl RandomSource for Fixed {
    fn next_u32(&mut self) -> u32 {
        if self.0.is_empty() {
            0
        } else {
            self.0.remove(0)
        }
    }
}

fn schedule_with(
    sched: &mut dyn Scheduler,
    dests: &[SchedDest],
    rng: &mut dyn RandomSource,
) -> Option<usize> {
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let vip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
    let mut ctx = SchedContext {
        packet: SchedPacket {
            saddr: ip,
            sport: 40000,
            daddr: vip,
            dport: 80,
        },
        flags: SchedFlags::default(),
        now_secs: 0,
        rng,
        lblc_expiration_secs: 86400,
        lblcr_expiration_secs: 86400,
    };
    sched.schedule(dests, &mut ctx)
}

/// One service: its list in kernel order (newest first), its scheduler and
/// counters that picks can bump.
struct Sim {
    dests: Vec<SchedDest>,
    sched: Box<dyn Scheduler>,
    rng: XorShiftRng,
}

impl Sim {
    fn new(name: &str, dests: Vec<SchedDest>) -> Sim {
        let sched = new_scheduler(name, &dests).expect("known scheduler");
        assert_eq!(sched.name(), name);
        Sim {
            dests,
            sched,
            rng: XorShiftRng::new(1),
        }
    }

    /// `ipvsadm -E -s name`: a fresh scheduler over the current list.
    fn replace_scheduler(&mut self, name: &str) {
        self.sched = new_scheduler(name, &self.dests).expect("known scheduler");
    }

    /// `ipvsadm -a`: the new server goes to the head of the list.
    fn add(&mut self, id: u64, weight: i32) {
        self.dests.insert(0, dest(id, weight));
        self.sched
            .dests_changed(DestChange::Added(DestId(id)), &self.dests);
    }

    /// `ipvsadm -d`.
    fn remove(&mut self, id: u64) {
        let index = self.index(id);
        self.sched.dests_changed(
            DestChange::Removing {
                id: DestId(id),
                index,
            },
            &self.dests,
        );
        self.dests.remove(index);
        self.sched
            .dests_changed(DestChange::Removed(DestId(id)), &self.dests);
    }

    /// `ipvsadm -e -w weight`.
    fn edit(&mut self, id: u64, weight: i32) {
        let index = self.index(id);
        let d = &mut self.dests[index];
        if weight == 0 && d.weight != 0 {
            d.last_weight = d.weight;
        }
        d.weight = weight;
        if weight != 0 {
            d.last_weight = weight;
        }
        self.sched
            .dests_changed(DestChange::Updated(DestId(id)), &self.dests);
    }

    fn index(&self, id: u64) -> usize {
        self.dests
            .iter()
            .position(|d| d.id == DestId(id))
            .expect("server in list")
    }

    fn get(&mut self, id: u64) -> &mut SchedDest {
        let i = self.index(id);
        &mut self.dests[i]
    }

    /// One decision, as a server id.
    fn pick(&mut self) -> Option<u64> {
        let i = schedule_with(self.sched.as_mut(), &self.dests, &mut self.rng)?;
        Some(self.dests[i].id.0)
    }

    /// One decision that opens a connection which stays active.
    fn connect(&mut self) -> Option<u64> {
        let id = self.pick()?;
        self.get(id).active += 1;
        Some(id)
    }

    fn picks(&mut self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.pick().expect("a pick")).collect()
    }
}

const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const RS1: u64 = 11;
const RS2: u64 = 12;

// ---------------------------------------------------------------- wrr

#[test]
fn wrr_weights_4_3_2() {
    let mut sim = Sim::new("wrr", vec![dest(A, 4), dest(B, 3), dest(C, 2)]);
    let cycle = [A, A, B, A, B, C, A, B, C];
    let want: Vec<u64> = cycle.iter().chain(cycle.iter()).copied().collect();
    assert_eq!(sim.picks(18), want);
}

#[test]
fn wrr_seed_walkthrough_keeps_current_weight_across_edits() {
    // -A -s rr; -a RS1 -w 1; -a RS2 -w 1 (list [RS2, RS1]).
    let mut sim = Sim::new("rr", vec![]);
    sim.add(RS1, 1);
    sim.add(RS2, 1);
    // The first curl lands on RS2.
    assert_eq!(sim.picks(2), [RS2, RS1]);
    // -E -s wrr; -e RS1 -w 3; -e RS2 -w 1.
    sim.replace_scheduler("wrr");
    sim.edit(RS1, 3);
    sim.edit(RS2, 1);
    assert_eq!(sim.picks(8), [RS2, RS1, RS1, RS1, RS2, RS1, RS1, RS1]);
}

#[test]
fn wrr_after_clear_and_restore() {
    // Service created with wrr and no servers, then -a RS1 -w 3, -a RS2 -w 1.
    let mut sim = Sim::new("wrr", vec![]);
    assert_eq!(sim.pick(), None);
    sim.add(RS1, 3);
    sim.add(RS2, 1);
    assert_eq!(sim.picks(8), [RS2, RS1, RS1, RS1, RS2, RS1, RS1, RS1]);
}

#[test]
fn wrr_gcd_steps() {
    // di = 2, mw = 3: levels 3, 1. A(4) at both, B(2) at level 1.
    let mut sim = Sim::new("wrr", vec![dest(A, 4), dest(B, 2)]);
    assert_eq!(sim.picks(6), [A, A, B, A, A, B]);
}

#[test]
fn wrr_edit_rounds_current_weight_to_gcd_step() {
    let mut sim = Sim::new("wrr", vec![dest(A, 4), dest(B, 2)]);
    // cw = 3 after the first pick.
    assert_eq!(sim.pick(), Some(A));
    // B -> 6: di 2, mw 5, cw (3/2)*2+1 = 3, cursor back to head.
    sim.edit(B, 6);
    // Level 3: A B; level 1: A B; then levels 5 (B), 3 (A B), 1 (A B).
    assert_eq!(sim.picks(10), [A, B, A, B, B, A, B, A, B, B]);
}

#[test]
fn wrr_edit_clamps_current_weight_to_new_max() {
    let mut sim = Sim::new("wrr", vec![dest(A, 5), dest(B, 1)]);
    assert_eq!(sim.pick(), Some(A));
    // A -> 2: mw = 2 and cw 5 > 2 becomes 2 (not 0).
    sim.edit(A, 2);
    assert_eq!(sim.picks(6), [A, A, B, A, A, B]);
}

#[test]
fn wrr_skips_overloaded_and_zero_weight() {
    let mut sim = Sim::new("wrr", vec![overloaded(dest(A, 5)), dest(B, 0), dest(C, 2)]);
    assert_eq!(sim.picks(3), [C, C, C]);
    sim.get(C).overloaded = true;
    assert_eq!(sim.pick(), None);
    sim.get(A).overloaded = false;
    assert_eq!(sim.picks(2), [A, A]);
}

#[test]
fn wrr_all_zero_weights() {
    let mut sim = Sim::new("wrr", vec![dest(A, 0), dest(B, 0)]);
    assert_eq!(sim.pick(), None);
    sim.edit(B, 2);
    assert_eq!(sim.picks(3), [B, B, B]);
}

#[test]
fn wrr_removal_resets_to_head() {
    let mut sim = Sim::new("wrr", vec![dest(A, 1), dest(B, 1), dest(C, 1)]);
    assert_eq!(sim.picks(2), [A, B]);
    sim.remove(C);
    // Cursor back at the head: A again.
    assert_eq!(sim.picks(3), [A, B, A]);
}

// ---------------------------------------------------------------- rr

#[test]
fn rr_cycles_in_list_order_from_newest() {
    let mut sim = Sim::new("rr", vec![]);
    sim.add(A, 1);
    sim.add(B, 1);
    sim.add(C, 1);
    // List [C, B, A].
    assert_eq!(sim.picks(6), [C, B, A, C, B, A]);
}

#[test]
fn rr_delete_current_server() {
    let mut sim = Sim::new("rr", vec![dest(C, 1), dest(B, 1), dest(A, 1)]);
    assert_eq!(sim.picks(2), [C, B]);
    // Cursor on B; deleting it moves the cursor to C, so A is next.
    sim.remove(B);
    assert_eq!(sim.picks(3), [A, C, A]);
}

#[test]
fn rr_delete_current_server_at_list_head() {
    let mut sim = Sim::new("rr", vec![dest(C, 1), dest(B, 1), dest(A, 1)]);
    assert_eq!(sim.picks(1), [C]);
    // Cursor on the first server: back to the head, B (now first) is next.
    sim.remove(C);
    assert_eq!(sim.picks(3), [B, A, B]);
}

#[test]
fn rr_delete_other_server_keeps_cursor() {
    let mut sim = Sim::new("rr", vec![dest(C, 1), dest(B, 1), dest(A, 1)]);
    assert_eq!(sim.picks(1), [C]);
    sim.remove(A);
    assert_eq!(sim.picks(3), [B, C, B]);
}

#[test]
fn rr_add_server() {
    let mut sim = Sim::new("rr", vec![dest(B, 1), dest(A, 1)]);
    assert_eq!(sim.picks(2), [B, A]);
    // Cursor on A (last); C goes to the head and is reached on the wrap.
    sim.add(C, 1);
    assert_eq!(sim.picks(4), [C, B, A, C]);

    let mut sim = Sim::new("rr", vec![dest(B, 1), dest(A, 1)]);
    assert_eq!(sim.picks(1), [B]);
    // Cursor on B: A first, then C from the head.
    sim.add(C, 1);
    assert_eq!(sim.picks(4), [A, C, B, A]);
}

#[test]
fn rr_skips_unavailable_and_keeps_cursor_on_failure() {
    let mut sim = Sim::new("rr", vec![dest(C, 1), overloaded(dest(B, 1)), dest(A, 0)]);
    assert_eq!(sim.picks(3), [C, C, C]);
    sim.get(C).overloaded = true;
    assert_eq!(sim.pick(), None);
    sim.edit(A, 1);
    sim.get(C).overloaded = false;
    // Cursor still on C: A, then C.
    assert_eq!(sim.picks(3), [A, C, A]);
}

// ------------------------------------------------ lc / wlc / sed / nq

#[test]
fn least_conn_family_ties_go_to_first_in_list() {
    for name in ["lc", "wlc", "sed", "nq"] {
        let mut sim = Sim::new(name, vec![dest(C, 1), dest(B, 1), dest(A, 1)]);
        assert_eq!(sim.pick(), Some(C), "{name}");
        // With connections that stay open, equal weights give C B A C B A.
        let got: Vec<_> = (0..6).map(|_| sim.connect().expect("pick")).collect();
        assert_eq!(got, [C, B, A, C, B, A], "{name}");
    }
}

#[test]
fn lc_ignores_weight_beyond_on_off() {
    let mut sim = Sim::new(
        "lc",
        vec![
            dest_with(A, 100, 2, 0),
            dest_with(B, 1, 1, 0),
            dest_with(C, 5, 1, 0),
        ],
    );
    // Overheads 512, 256, 256: B (first of the tie).
    assert_eq!(sim.pick(), Some(B));
    // Inactive counts: B 256+1 > C 256.
    sim.get(B).inactive = 1;
    assert_eq!(sim.pick(), Some(C));
    sim.edit(C, 0);
    assert_eq!(sim.pick(), Some(B));
}

#[test]
fn wlc_overhead_per_weight() {
    // Overheads: A 3*256=768 w3 -> 256/w; B 256+10=266 w1; C 0+300 w1.
    let mut sim = Sim::new(
        "wlc",
        vec![
            dest_with(A, 3, 3, 0),
            dest_with(B, 1, 1, 10),
            dest_with(C, 1, 0, 300),
        ],
    );
    // A 768/3 = 256 < B 266 < C 300.
    assert_eq!(sim.pick(), Some(A));
    sim.get(A).inactive = 31; // 799/3 = 266.33 > 266
    assert_eq!(sim.pick(), Some(B));
    sim.get(A).inactive = 30; // 798/3 = 266: tie with B, A is earlier
    assert_eq!(sim.pick(), Some(A));
}

#[test]
fn wlc_starts_from_first_available() {
    let mut sim = Sim::new(
        "wlc",
        vec![
            dest(A, 0),
            overloaded(dest(B, 5)),
            dest_with(C, 2, 4, 0),
            dest_with(4, 1, 2, 0),
        ],
    );
    // C: 1024/2 = 512, dest 4: 512/1: tie, C (first available) stays.
    assert_eq!(sim.pick(), Some(C));
}

#[test]
fn sed_ignores_inactive() {
    let mut sim = Sim::new(
        "sed",
        vec![
            dest_with(A, 1, 1, 0),
            dest_with(B, 2, 2, 0),
            dest_with(C, 3, 3, 500),
        ],
    );
    // (1+1)/1 = 2, (2+1)/2 = 1.5, (3+1)/3 = 1.33: C despite 500 inactive.
    assert_eq!(sim.pick(), Some(C));
    // wlc on the same list: 256/1, 512/2, (768+500)/3 = 422.7 -> A (tie with B, A first).
    let mut wlc = Sim::new("wlc", sim.dests.clone());
    assert_eq!(wlc.pick(), Some(A));
}

#[test]
fn nq_prefers_idle_then_sed() {
    let mut sim = Sim::new(
        "nq",
        vec![
            dest_with(A, 10, 1, 0),
            dest_with(B, 1, 0, 99),
            dest_with(C, 1, 0, 0),
        ],
    );
    // B is the first idle server (inactive does not matter).
    assert_eq!(sim.pick(), Some(B));
    sim.get(B).active = 1;
    assert_eq!(sim.pick(), Some(C));
    sim.get(C).active = 1;
    // All busy: sed, (1+1)/10 wins.
    assert_eq!(sim.pick(), Some(A));
    // An idle but quiesced or overloaded server is skipped.
    sim.get(B).active = 0;
    sim.edit(B, 0);
    sim.get(C).active = 0;
    sim.get(C).overloaded = true;
    assert_eq!(sim.pick(), Some(A));
}

#[test]
fn unavailable_servers_are_never_picked() {
    for name in ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos"] {
        let list = vec![
            overloaded(dest(A, 10)),
            dest(B, 0),
            overloaded(dest(C, 1)),
            dest_with(4, 1, 1, 0),
        ];
        let mut sim = Sim::new(name, list);
        for _ in 0..5 {
            assert_eq!(sim.pick(), Some(4), "{name}");
        }
        sim.get(4).overloaded = true;
        assert_eq!(sim.pick(), None, "{name}");
        let mut empty = Sim::new(name, vec![]);
        assert_eq!(empty.pick(), None, "{name}");
    }
}

// ---------------------------------------------------------------- fo / ovf

#[test]
fn fo_highest_weight_first_on_ties() {
    let mut sim = Sim::new(
        "fo",
        vec![
            dest(A, 5),
            dest_with(B, 7, 1000, 0),
            dest(C, 7),
            overloaded(dest(4, 9)),
        ],
    );
    assert_eq!(sim.pick(), Some(B));
    sim.get(B).overloaded = true;
    assert_eq!(sim.pick(), Some(C));
    sim.edit(C, 0);
    assert_eq!(sim.pick(), Some(A));
}

#[test]
fn ovf_fills_highest_weight_up_to_weight_plus_one() {
    let mut sim = Sim::new("ovf", vec![dest(A, 1), dest(B, 2)]);
    // B takes 3 connections (full only when active > weight), then A takes 2.
    let got: Vec<_> = (0..5).map(|_| sim.connect()).collect();
    assert_eq!(got, [Some(B), Some(B), Some(B), Some(A), Some(A)]);
    assert_eq!(sim.connect(), None);
    // One closes on B: it is the pick again.
    sim.get(B).active -= 1;
    assert_eq!(sim.pick(), Some(B));
}

#[test]
fn ovf_boundary_and_ties() {
    let mut sim = Sim::new(
        "ovf",
        vec![dest_with(A, 3, 3, 50), dest_with(B, 3, 0, 0), dest(C, 2)],
    );
    // active == weight is still eligible; ties go to the first.
    assert_eq!(sim.pick(), Some(A));
    sim.get(A).active = 4;
    assert_eq!(sim.pick(), Some(B));
    sim.get(B).overloaded = true;
    assert_eq!(sim.pick(), Some(C));
}

// ---------------------------------------------------------------- twos

#[test]
fn twos_with_fixed_draws() {
    // Available weights A 2, B 3 (C is quiesced): total 6.
    let list = vec![dest_with(A, 2, 1, 0), dest(C, 0), dest_with(B, 3, 0, 0)];
    let mut s = new_scheduler("twos", &list).expect("twos");
    // r1 = 7 % 6 = 1 -> A; r2 = 4 % 6 = 4 -> B; 3*256 > 2*0 -> B.
    assert_eq!(
        schedule_with(s.as_mut(), &list, &mut Fixed(vec![7, 4])),
        Some(2)
    );
    // r1 = 4 -> B; r2 = 0 -> A; 2*0 > 3*256 is false -> B (choice 1).
    assert_eq!(
        schedule_with(s.as_mut(), &list, &mut Fixed(vec![4, 0])),
        Some(2)
    );
    // r1 = 2 -> A (2-2 = 0); r2 = 12 % 6 = 0 -> A.
    assert_eq!(
        schedule_with(s.as_mut(), &list, &mut Fixed(vec![2, 12])),
        Some(0)
    );
    // r1 = 3 -> B; r2 = 5 -> B.
    assert_eq!(
        schedule_with(s.as_mut(), &list, &mut Fixed(vec![3, 5])),
        Some(2)
    );
    // Equal load per weight: A 2 active (512/2), B 3 active (768/3): choice 1.
    let even = vec![dest_with(A, 2, 2, 0), dest_with(B, 3, 3, 0)];
    assert_eq!(
        schedule_with(s.as_mut(), &even, &mut Fixed(vec![4, 0])),
        Some(1)
    );
    assert_eq!(
        schedule_with(s.as_mut(), &even, &mut Fixed(vec![0, 4])),
        Some(0)
    );
}

/// The kernel's rule, restated with cumulative sums: a draw `r` lands on the
/// first available server whose running weight sum reaches `r`.
fn twos_expected(list: &[SchedDest], r1: u32, r2: u32) -> Option<usize> {
    let avail: Vec<usize> = (0..list.len())
        .filter(|&i| list[i].weight > 0 && !list[i].overloaded)
        .collect();
    if avail.is_empty() {
        return None;
    }
    let total: u64 = avail.iter().map(|&i| list[i].weight as u64).sum::<u64>() + 1;
    let land = |r: u64| {
        let mut sum = 0u64;
        for &i in &avail {
            sum += list[i].weight as u64;
            if sum >= r {
                return i;
            }
        }
        unreachable!("r < total")
    };
    let c1 = land(r1 as u64 % total);
    let c2 = land(r2 as u64 % total);
    let load = |i: usize| ((list[i].active as u128) << 8) + list[i].inactive as u128;
    if list[c2].weight as u128 * load(c1) > list[c1].weight as u128 * load(c2) {
        Some(c2)
    } else {
        Some(c1)
    }
}

#[test]
fn twos_with_seeded_rng() {
    let list = vec![
        dest_with(A, 5, 3, 10),
        overloaded(dest(4, 50)),
        dest_with(B, 1, 0, 2),
        dest_with(C, 3, 1, 0),
        dest(5, 0),
    ];
    for seed in [1u64, 2, 42, 0xDEAD_BEEF, 7_777_777] {
        let mut s = new_scheduler("twos", &list).expect("twos");
        let mut rng = XorShiftRng::new(seed);
        let mut mirror = XorShiftRng::new(seed);
        for step in 0..50 {
            let r1 = mirror.next_u32();
            let r2 = mirror.next_u32();
            let want = twos_expected(&list, r1, r2);
            let got = schedule_with(s.as_mut(), &list, &mut rng);
            assert_eq!(got, want, "seed {seed} step {step}");
        }
    }
}

#[test]
fn twos_draws_nothing_when_nothing_available() {
    let list = vec![dest(A, 0), overloaded(dest(B, 3))];
    let mut s = new_scheduler("twos", &list).expect("twos");
    let mut rng = Fixed(vec![1, 2]);
    assert_eq!(schedule_with(s.as_mut(), &list, &mut rng), None);
    assert_eq!(rng.0, [1, 2]);
}

// ---------------------------------------------------------------- properties

proptest! {
    /// Any window of sum(weights) consecutive wrr picks holds exactly `w`
    /// picks of each server of weight `w` (sum/di picks form one cycle).
    #[test]
    fn wrr_shares_are_exact_over_a_cycle(
        weights in prop::collection::vec(1i32..=12, 1..=6),
        skip in 0usize..40,
    ) {
        let list: Vec<SchedDest> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| dest(i as u64 + 1, w))
            .collect();
        let mut sim = Sim::new("wrr", list);
        sim.picks(skip);
        let total: i32 = weights.iter().sum();
        let got = sim.picks(total as usize);
        for (i, &w) in weights.iter().enumerate() {
            let n = got.iter().filter(|&&id| id == i as u64 + 1).count();
            prop_assert_eq!(n, w as usize, "server {} of weight {}", i + 1, w);
        }
    }

    /// wlc with connections that never close: nobody runs more than one
    /// connection ahead of its weighted share, and after every multiple of
    /// sum(weights) connections the counts equal k * weight.
    #[test]
    fn wlc_keeps_active_counts_proportional(
        weights in prop::collection::vec(1i32..=10, 1..=6),
        rounds in 1usize..=4,
    ) {
        let list: Vec<SchedDest> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| dest(i as u64 + 1, w))
            .collect();
        let mut sim = Sim::new("wlc", list);
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        for n in 1..=rounds as u64 * total {
            sim.connect().expect("a pick");
            for d in &sim.dests {
                let w = d.weight as u64;
                // active <= n*w/total + 1
                prop_assert!(d.active as u64 * total <= n * w + total,
                    "n {} dest {} active {} weight {}", n, d.id, d.active, w);
                if n % total == 0 {
                    prop_assert_eq!(d.active as u64, n / total * w);
                }
            }
        }
    }
}
