//! Tests for the hashing and locality schedulers (`dh`, `sh`, `mh`,
//! `lblc`, `lblcr`) and their shared helpers.
//!
//! Expected values come from small reference computations written here
//! straight from the algorithm descriptions (in a different shape from the
//! library code: u64 arithmetic and modulo instead of wrapping and masks,
//! repeated-list expansion instead of counters, the Maglev paper's
//! `offset + j * skip` instead of running sums), from values worked out by
//! hand in comments, and from published SipHash test vectors.

#![allow(clippy::unwrap_used)]

use rvs_core::model::{DestId, SchedFlags};
use rvs_core::sched::dh::DhScheduler;
use rvs_core::sched::hash::{self, hsiphash, hsiphash_u32, siphash};
use rvs_core::sched::lblc::LblcScheduler;
use rvs_core::sched::lblcr::LblcrScheduler;
use rvs_core::sched::mh::{self, MhScheduler};
use rvs_core::sched::sh::ShScheduler;
use rvs_core::sched::{
    new_scheduler, DestChange, SchedContext, SchedDest, SchedPacket, Scheduler, XorShiftRng,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------- helpers

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v4n(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn dest(id: u64, addr: IpAddr, weight: i32) -> SchedDest {
    SchedDest {
        id: DestId(id),
        addr,
        port: 80,
        weight,
        last_weight: weight,
        overloaded: false,
        active: 0,
        inactive: 0,
    }
}

/// Three real servers A, B, C (ids 1, 2, 3) in list order, weight 1.
fn abc() -> Vec<SchedDest> {
    vec![
        dest(1, v4(192, 168, 1, 1), 1),
        dest(2, v4(192, 168, 1, 2), 1),
        dest(3, v4(192, 168, 1, 3), 1),
    ]
}

const DAY: u64 = 24 * 3600;

struct Pkt {
    saddr: IpAddr,
    sport: u16,
    daddr: IpAddr,
    flags: u32,
    now: u64,
    expiration: u64,
}

impl Pkt {
    fn from(saddr: IpAddr) -> Pkt {
        Pkt {
            saddr,
            sport: 40000,
            daddr: v4(10, 0, 0, 100),
            flags: 0,
            now: 0,
            expiration: DAY,
        }
    }
    fn to(daddr: IpAddr) -> Pkt {
        Pkt {
            daddr,
            ..Pkt::from(v4(198, 51, 100, 2))
        }
    }
    fn port(mut self, sport: u16) -> Pkt {
        self.sport = sport;
        self
    }
    fn flags(mut self, f: u32) -> Pkt {
        self.flags = f;
        self
    }
    fn at(mut self, now: u64) -> Pkt {
        self.now = now;
        self
    }
    fn expiring(mut self, secs: u64) -> Pkt {
        self.expiration = secs;
        self
    }
    fn run(&self, s: &mut dyn Scheduler, dests: &[SchedDest]) -> Option<usize> {
        let mut rng = XorShiftRng::new(7);
        let mut ctx = SchedContext {
            packet: SchedPacket {
                saddr: self.saddr,
                sport: self.sport,
                daddr: self.daddr,
                dport: 80,
            },
            flags: SchedFlags(self.flags),
            now_secs: self.now,
            rng: &mut rng,
            lblc_expiration_secs: self.expiration,
            lblcr_expiration_secs: self.expiration,
        };
        s.schedule(dests, &mut ctx)
    }
}

const FALLBACK: u32 = SchedFlags::SCHED1;
const PORT: u32 = SchedFlags::SCHED2;

/// Deterministic pseudo-random u32s for address sweeps (an LCG, so the
/// test does not depend on the library's RNG).
fn addrs(n: usize, seed: u32) -> Vec<u32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x
        })
        .collect()
}

/// Reference fold: IPv4 as a number; IPv6 as XOR of the four big-endian
/// 32-bit words.
fn ref_fold(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(x) => u64::from(u32::from(x)),
        IpAddr::V6(x) => {
            let seg = x.segments();
            let w = |i: usize| (u64::from(seg[2 * i]) << 16) | u64::from(seg[2 * i + 1]);
            w(0) ^ w(1) ^ w(2) ^ w(3)
        }
    }
}

fn index_of(dests: &[SchedDest], id: DestId) -> usize {
    dests.iter().position(|d| d.id == id).unwrap()
}

// ------------------------------------------------------------ shared hash

#[test]
fn addr_fold_matches_reference() {
    let v6: Ipv6Addr = "2001:db8:85a3::8a2e:370:7334".parse().unwrap();
    for a in [
        v4(10, 0, 0, 1),
        v4(255, 255, 255, 255),
        IpAddr::V6(v6),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        assert_eq!(u64::from(hash::addr_fold(a)), ref_fold(a), "{a}");
    }
    // By hand: 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ->
    // 0x20010db8 ^ 0x85a30000 ^ 0x00008a2e ^ 0x03707334 = 0xa6d2f4a2
    assert_eq!(
        hash::addr_fold(IpAddr::V6(v6)),
        0x20010db8 ^ 0x85a30000 ^ 0x00008a2e ^ 0x03707334
    );
    assert_eq!(hash::addr_fold(IpAddr::V6(v6)), 0xa6d2_f4a2);
}

/// SipHash-2-4 vectors from the SipHash reference implementation
/// (key 00..0f, message 00..len-1).
#[test]
fn siphash_2_4_reference_vectors() {
    let key = [0x0706_0504_0302_0100u64, 0x0f0e_0d0c_0b0a_0908u64];
    let msg: Vec<u8> = (0u8..64).collect();
    let expect: [(usize, u64); 6] = [
        (0, 0x726f_db47_dd0e_0e31),
        (1, 0x74f8_39c5_93dc_67fd),
        (7, 0xab02_00f5_8b01_d137),
        (8, 0x93f5_f579_9a93_2462),
        (15, 0xa129_ca61_49be_45e5),
        (63, 0x958a_324c_eb06_4572),
    ];
    for (len, want) in expect {
        assert_eq!(siphash(2, 4, key, &msg[..len]), want, "len {len}");
    }
}

/// The kernel's own hsiphash self-test vectors for 64-bit kernels
/// (lib/siphash_kunit.c: key 00..0f, message 00..len-1), i.e. SipHash-1-3
/// truncated to 32 bits.
#[test]
fn hsiphash_kernel_64bit_vectors() {
    let key = [0x0706_0504_0302_0100u64, 0x0f0e_0d0c_0b0a_0908u64];
    let msg: Vec<u8> = (0u8..64).collect();
    let expect: [(usize, u32); 8] = [
        (0, 0x050f_c4dc),
        (1, 0x7d57_ca93),
        (3, 0xe7dd_f7fb),
        (4, 0x88d3_8328),
        (8, 0x8d29_9a8e),
        (15, 0x2a51_9956),
        (16, 0x7d90_8b66),
        (63, 0xb7bb_b3a8),
    ];
    for (len, want) in expect {
        assert_eq!(hsiphash(key, &msg[..len]), want, "len {len}");
    }
    // hsiphash_1u32(0x03020100) equals the 4-byte vector.
    assert_eq!(hsiphash_u32(0x0302_0100, key), 0x88d3_8328);
}

// --------------------------------------------------------------------- dh

/// Reference dh bucket: top 8 bits of the low 32 bits of fold * 0x61C88647.
fn ref_dh_bucket(a: IpAddr) -> usize {
    (((ref_fold(a) * 0x61C8_8647) % (1 << 32)) >> 24) as usize
}

#[test]
fn dh_buckets_by_hand() {
    // 0.0.0.1: 0x61C88647 >> 24 = 0x61 = 97; 0.0.0.2: 0xC3910C8E >> 24 = 195.
    assert_eq!(ref_dh_bucket(v4(0, 0, 0, 1)), 97);
    assert_eq!(ref_dh_bucket(v4(0, 0, 0, 2)), 195);
    let dests = abc();
    let mut s = new_scheduler("dh", &dests).unwrap();
    // 97 % 3 = 1 -> B; 195 % 3 = 0 -> A.
    assert_eq!(Pkt::to(v4(0, 0, 0, 1)).run(s.as_mut(), &dests), Some(1));
    assert_eq!(Pkt::to(v4(0, 0, 0, 2)).run(s.as_mut(), &dests), Some(0));
}

#[test]
fn dh_table_is_round_robin_over_list_ignoring_weights() {
    let dests = vec![
        dest(1, v4(192, 168, 1, 1), 5),
        dest(2, v4(192, 168, 1, 2), 0),
        dest(3, v4(192, 168, 1, 3), 1),
        dest(4, v4(192, 168, 1, 4), 100),
    ];
    let table = DhScheduler::new(&dests).buckets();
    let expect: Vec<Option<DestId>> = dests.iter().map(|d| Some(d.id)).cycle().take(256).collect();
    assert_eq!(table, expect);
    assert_eq!(DhScheduler::new(&[]).buckets(), vec![None; 256]);
}

#[test]
fn dh_picks_for_many_destinations() {
    let dests: Vec<SchedDest> = (1..=7).map(|i| dest(i, v4(10, 1, 0, i as u8), 1)).collect();
    let mut s = new_scheduler("dh", &dests).unwrap();
    let v6s: Vec<IpAddr> = addrs(200, 99)
        .iter()
        .map(|x| {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                (*x >> 16) as u16,
                0,
                1,
                *x as u16,
                9,
            ))
        })
        .collect();
    let all: Vec<IpAddr> = addrs(2000, 1).into_iter().map(v4n).chain(v6s).collect();
    for a in all {
        let want = ref_dh_bucket(a) % dests.len();
        // The source address must not matter.
        let p = Pkt {
            saddr: v4n(a.to_string().len() as u32),
            ..Pkt::to(a)
        };
        assert_eq!(p.run(s.as_mut(), &dests), Some(want), "{a}");
    }
}

#[test]
fn dh_unavailable_has_no_fallback() {
    let mut dests = abc();
    let mut s = new_scheduler("dh", &dests).unwrap();
    dests[1].weight = 0; // B quiesced: 0.0.0.1 (bucket 97 -> B) gets nothing
    s.dests_changed(DestChange::Updated(DestId(2)), &dests);
    assert_eq!(Pkt::to(v4(0, 0, 0, 1)).run(s.as_mut(), &dests), None);
    assert_eq!(
        Pkt::to(v4(0, 0, 0, 1))
            .flags(FALLBACK)
            .run(s.as_mut(), &dests),
        None
    );
    dests[1].weight = 1;
    dests[1].overloaded = true;
    assert_eq!(Pkt::to(v4(0, 0, 0, 1)).run(s.as_mut(), &dests), None);
    assert_eq!(Pkt::to(v4(0, 0, 0, 2)).run(s.as_mut(), &dests), Some(0));
}

#[test]
fn dh_rebuilds_on_removal() {
    let dests = abc();
    let mut s = new_scheduler("dh", &dests).unwrap();
    // Remove A: announced before (index 0), then after.
    s.dests_changed(
        DestChange::Removing {
            id: DestId(1),
            index: 0,
        },
        &dests,
    );
    let after: Vec<SchedDest> = dests[1..].to_vec();
    // Before `Removed` arrives the table already follows the new list:
    // bucket 97 % 2 = 1 -> C (index 1 of [B, C]).
    assert_eq!(Pkt::to(v4(0, 0, 0, 1)).run(s.as_mut(), &after), Some(1));
    s.dests_changed(DestChange::Removed(DestId(1)), &after);
    assert_eq!(Pkt::to(v4(0, 0, 0, 1)).run(s.as_mut(), &after), Some(1));
    // 0.0.0.3: 3 * 0x61C88647 = 0x1_2559_92D5 -> 0x25 = 37 -> 37 % 2 = 1 -> C;
    // 0.0.0.7: 7 * 0x61C88647 = 0x2_AC7B_ABF1 -> 0xAC = 172 -> even -> B.
    assert_eq!(ref_dh_bucket(v4(0, 0, 0, 3)), 37);
    assert_eq!(ref_dh_bucket(v4(0, 0, 0, 7)), 172);
    assert_eq!(Pkt::to(v4(0, 0, 0, 3)).run(s.as_mut(), &after), Some(1));
    assert_eq!(Pkt::to(v4(0, 0, 0, 7)).run(s.as_mut(), &after), Some(0));
}

// --------------------------------------------------------------------- sh

/// Reference sh bucket, in u64 arithmetic: x = (fold + port) mod 2^32,
/// h = ((x * 0x61C88647) mod 2^32) / 2^24 (the top byte), bucket =
/// (h + offset) mod 256. By hand, for 10.0.0.n with port 0 (fold
/// 0x0A000000 + n): n = 0 -> 198, 1 -> 39, 2 -> 137, 3 -> 235, 4 -> 77,
/// 6 -> 16. (The Linux 6.1 captures in `tests/sched_refvm.rs` pin this.)
fn ref_sh_bucket(a: IpAddr, port: u16, offset: u64) -> usize {
    let x = (ref_fold(a) + u64::from(port)) % (1 << 32);
    let h = ((x * 0x61C8_8647) % (1 << 32)) >> 24;
    ((h + offset) % 256) as usize
}

/// Reference sh table: each server repeated max(1, weight) times, the
/// whole pattern repeated, first 256 taken.
fn ref_sh_table(dests: &[SchedDest]) -> Vec<DestId> {
    let pattern: Vec<DestId> = dests
        .iter()
        .flat_map(|d| std::iter::repeat_n(d.id, d.weight.clamp(1, 256) as usize))
        .collect();
    pattern.iter().copied().cycle().take(256).collect()
}

#[test]
fn sh_hash_by_hand() {
    // 0x0A000001 * 0x61C88647 = 0x27C88647 (mod 2^32): top byte 0x27 = 39.
    assert_eq!(ref_sh_bucket(v4(10, 0, 0, 1), 0, 0), 39);
    assert_eq!(ref_sh_bucket(v4(10, 0, 0, 2), 0, 0), 137);
    assert_eq!(ref_sh_bucket(v4(10, 0, 0, 0), 2, 0), 137);
    assert_eq!(ref_sh_bucket(v4(10, 0, 0, 1), 0, 250), 33); // 289 - 256
    assert_eq!(hash::sh_hash(0x0A00_0001, 0, 0, 8), 39);
    let dests = abc();
    let mut s = new_scheduler("sh", &dests).unwrap();
    // 39 % 3 = 0 -> A; 137 % 3 = 2 -> C.
    assert_eq!(Pkt::from(v4(10, 0, 0, 1)).run(s.as_mut(), &dests), Some(0));
    assert_eq!(Pkt::from(v4(10, 0, 0, 2)).run(s.as_mut(), &dests), Some(2));
}

#[test]
fn sh_tables_for_weights() {
    let w = |ws: &[i32]| -> Vec<SchedDest> {
        ws.iter()
            .enumerate()
            .map(|(i, w)| dest(i as u64 + 1, v4(10, 9, 0, i as u8 + 1), *w))
            .collect()
    };
    for ws in [
        &[1, 1, 1][..],
        &[3, 1, 2],
        &[0, 2, 0],
        &[5],
        &[300, 1],
        &[1, 300],
        &[7, 0, 255, 3],
    ] {
        let dests = w(ws);
        let got: Vec<DestId> = ShScheduler::new(&dests)
            .buckets()
            .into_iter()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(got, ref_sh_table(&dests), "weights {ws:?}");
    }
    // By hand, weights A3 B1 C2: A A A B C C repeated; bucket 0..5.
    let t = ShScheduler::new(&w(&[3, 1, 2])).buckets();
    let ids: Vec<u64> = t[..8].iter().map(|b| b.unwrap().0).collect();
    assert_eq!(ids, [1, 1, 1, 2, 3, 3, 1, 1]);
    // 256 = 42 * 6 + 4: the table ends A A A B.
    let tail: Vec<u64> = t[252..].iter().map(|b| b.unwrap().0).collect();
    assert_eq!(tail, [1, 1, 1, 2]);
    assert_eq!(ShScheduler::new(&[]).buckets(), vec![None; 256]);
}

#[test]
fn sh_picks_for_many_clients() {
    let dests: Vec<SchedDest> = (1..=5)
        .map(|i| dest(i, v4(10, 2, 0, i as u8), [2, 1, 4, 1, 3][i as usize - 1]))
        .collect();
    let mut s = new_scheduler("sh", &dests).unwrap();
    let table = ref_sh_table(&dests);
    let v6s: Vec<IpAddr> = addrs(300, 5)
        .iter()
        .map(|x| {
            IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0,
                *x as u16,
                0,
                0,
                0,
                (*x >> 16) as u16,
                1,
            ))
        })
        .collect();
    for a in addrs(3000, 3).into_iter().map(v4n).chain(v6s) {
        let want = index_of(&dests, table[ref_sh_bucket(a, 0, 0)]);
        assert_eq!(
            Pkt::from(a).port(1234).run(s.as_mut(), &dests),
            Some(want),
            "{a}"
        );
        // With sh-port the source port joins the key.
        let want = index_of(&dests, table[ref_sh_bucket(a, 1234, 0)]);
        assert_eq!(
            Pkt::from(a).port(1234).flags(PORT).run(s.as_mut(), &dests),
            Some(want),
            "{a}"
        );
    }
}

#[test]
fn sh_port_by_hand() {
    let dests = abc();
    let mut s = new_scheduler("sh", &dests).unwrap();
    // 10.0.0.0 without port: bucket 198 -> A. With port 2: bucket 137 -> C.
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 0)).port(2).run(s.as_mut(), &dests),
        Some(0)
    );
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 0))
            .port(2)
            .flags(PORT)
            .run(s.as_mut(), &dests),
        Some(2)
    );
}

/// Reference fallback probe: first try bucket h; then for k = 0..255 the
/// bucket ((k + h) % 256 + h * 1) % 256 — the kernel re-hashes with offset
/// roffset = (k + h) % 256, which adds roffset to h.
fn ref_sh_fallback(dests: &[SchedDest], a: IpAddr, port: u16) -> Option<usize> {
    let table = ref_sh_table(dests);
    let ok = |b: usize| {
        let i = index_of(dests, table[b]);
        (dests[i].weight > 0 && !dests[i].overloaded).then_some(i)
    };
    let h = ref_sh_bucket(a, port, 0);
    if let Some(i) = ok(h) {
        return Some(i);
    }
    (0..256u64).find_map(|k| ok(ref_sh_bucket(a, port, (k + h as u64) % 256)))
}

#[test]
fn sh_unavailable_without_and_with_fallback() {
    let mut dests = abc();
    dests[0].overloaded = true; // A
    let mut s = new_scheduler("sh", &dests).unwrap();
    // 10.0.0.1 -> bucket 39 -> A (overloaded): nothing without fallback.
    assert_eq!(Pkt::from(v4(10, 0, 0, 1)).run(s.as_mut(), &dests), None);
    // With fallback: k = 0 probes (39 + 39) % 256 = 78 -> A again;
    // k = 1 probes 79 -> B.
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 1))
            .flags(FALLBACK)
            .run(s.as_mut(), &dests),
        Some(1)
    );

    // Quiesce B too: the table is rebuilt with B still taking one bucket.
    dests[1].weight = 0;
    s.dests_changed(DestChange::Updated(DestId(2)), &dests);
    // 10.0.0.3: bucket 235 -> 235 % 3 = 1 -> B (weight 0).
    assert_eq!(Pkt::from(v4(10, 0, 0, 3)).run(s.as_mut(), &dests), None);
    // Probe k = 0: (235 + 235) % 256 = 214 -> 214 % 3 = 1 -> B; k = 1: 215 -> C.
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 3))
            .flags(FALLBACK)
            .run(s.as_mut(), &dests),
        Some(2)
    );

    // Sweep: fallback agrees with the reference everywhere, and never
    // returns an unavailable server.
    for a in addrs(2000, 11).into_iter().map(v4n) {
        for (flags, port) in [(FALLBACK, 0u16), (FALLBACK | PORT, 777)] {
            let got = Pkt::from(a).port(777).flags(flags).run(s.as_mut(), &dests);
            assert_eq!(got, ref_sh_fallback(&dests, a, port), "{a}");
            assert_eq!(got, Some(2), "{a}: only C is available");
        }
    }
    // Nothing available at all: fallback gives up.
    dests[2].weight = 0;
    s.dests_changed(DestChange::Updated(DestId(3)), &dests);
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 4))
            .flags(FALLBACK)
            .run(s.as_mut(), &dests),
        None
    );
}

#[test]
fn sh_weight_change_rebuilds_and_removal_follows_list() {
    let mut dests = abc();
    let mut s = new_scheduler("sh", &dests).unwrap();
    dests[0].weight = 2;
    s.dests_changed(DestChange::Updated(DestId(1)), &dests);
    // A A B C: 10.0.0.2 -> 137 % 4 = 1 -> A; 10.0.0.1 -> 39 % 4 = 3 -> C.
    assert_eq!(Pkt::from(v4(10, 0, 0, 2)).run(s.as_mut(), &dests), Some(0));
    assert_eq!(Pkt::from(v4(10, 0, 0, 1)).run(s.as_mut(), &dests), Some(2));
    let after = vec![dests[0], dests[2]];
    s.dests_changed(DestChange::Removed(DestId(2)), &after);
    // A A C: 39 % 3 = 0 -> A.
    assert_eq!(Pkt::from(v4(10, 0, 0, 1)).run(s.as_mut(), &after), Some(0));
    assert_eq!(
        new_scheduler("sh", &[]).unwrap().schedule(
            &[],
            &mut SchedContext {
                packet: SchedPacket {
                    saddr: v4(1, 1, 1, 1),
                    sport: 1,
                    daddr: v4(2, 2, 2, 2),
                    dport: 80
                },
                flags: SchedFlags(FALLBACK),
                now_secs: 0,
                rng: &mut XorShiftRng::new(1),
                lblc_expiration_secs: DAY,
                lblcr_expiration_secs: DAY,
            }
        ),
        None
    );
}

// --------------------------------------------------------------------- mh

const M: usize = 4093;

/// Reference Maglev, following the NSDI'16 paper's pseudo-code with the
/// kernel's weights: permutation entry j of server i is
/// (offset_i + j * skip_i) mod M; each pass gives server i `turns_i` slots.
fn ref_mh_table(dests: &[SchedDest]) -> Vec<Option<DestId>> {
    let key1 = [2_654_435_761u64, 2_654_435_761];
    let key2 = [2_654_446_892u64, 2_654_446_892];
    let word = |d: &SchedDest| (ref_fold(d.addr) + u64::from(d.port)) as u32;
    let offset: Vec<u64> = dests
        .iter()
        .map(|d| u64::from(hsiphash_u32(word(d), key1)) % M as u64)
        .collect();
    let skip: Vec<u64> = dests
        .iter()
        .map(|d| u64::from(hsiphash_u32(word(d), key2)) % (M as u64 - 1) + 1)
        .collect();
    // Turns: weights divided by their gcd, then shifted right until the
    // largest fits in 6 bits; a non-zero weight keeps at least one turn.
    let ws: Vec<u64> = dests.iter().map(|d| d.last_weight.max(0) as u64).collect();
    let g = ws.iter().filter(|w| **w > 0).fold(0u64, |g, w| {
        let (mut a, mut b) = (g, *w);
        while b > 0 {
            (a, b) = (b, a % b);
        }
        a
    });
    if g == 0 {
        return vec![None; M];
    }
    let mut shift = 0;
    let top = ws.iter().max().unwrap() / g;
    while (top >> shift) >= 64 {
        shift += 1;
    }
    let turns: Vec<u64> = ws
        .iter()
        .map(|w| {
            if (w / g) >> shift == 0 {
                u64::from(*w > 0)
            } else {
                (w / g) >> shift
            }
        })
        .collect();
    let mut next = vec![0u64; dests.len()];
    let mut entry: Vec<Option<DestId>> = vec![None; M];
    let mut n = 0;
    loop {
        for i in 0..dests.len() {
            for _ in 0..turns[i] {
                let mut c = ((offset[i] + next[i] * skip[i]) % M as u64) as usize;
                while entry[c].is_some() {
                    next[i] += 1;
                    c = ((offset[i] + next[i] * skip[i]) % M as u64) as usize;
                }
                entry[c] = Some(dests[i].id);
                next[i] += 1;
                n += 1;
                if n == M {
                    return entry;
                }
            }
        }
    }
}

fn ref_mh_slot(a: IpAddr, port: u16, offset: u64) -> usize {
    let v = ((ref_fold(a) + u64::from(port) + offset) % (1 << 32)) as u32;
    hsiphash_u32(v, [2_654_435_761, 2_654_435_761]) as usize % M
}

#[test]
fn mh_constants() {
    assert_eq!(mh::MH_TAB_SIZE, 4093);
    assert!(mh::check_dest_count(4093));
    assert!(!mh::check_dest_count(4094));
}

#[test]
fn mh_table_three_dests_matches_reference() {
    let dests = abc();
    let table = MhScheduler::new(&dests).slots();
    assert_eq!(table, ref_mh_table(&dests));
    // Equal weights: each server gets 1364 or 1365 of the 4093 slots.
    for d in &dests {
        let n = table.iter().filter(|s| **s == Some(d.id)).count();
        assert!(n == 1364 || n == 1365, "{n}");
    }
    let mut s = new_scheduler("mh", &dests).unwrap();
    for a in addrs(3000, 17).into_iter().map(v4n) {
        let want = index_of(&dests, table[ref_mh_slot(a, 0, 0)].unwrap());
        assert_eq!(Pkt::from(a).run(s.as_mut(), &dests), Some(want), "{a}");
        let want = index_of(&dests, table[ref_mh_slot(a, 40000, 0)].unwrap());
        assert_eq!(
            Pkt::from(a).flags(PORT).run(s.as_mut(), &dests),
            Some(want),
            "{a}"
        );
    }
}

#[test]
fn mh_weighted_tables_match_reference() {
    let mk = |ws: &[i32]| -> Vec<SchedDest> {
        ws.iter()
            .enumerate()
            .map(|(i, w)| {
                let mut d = dest(
                    i as u64 + 1,
                    v4(172, 16, (i / 200) as u8, (i % 200) as u8 + 1),
                    *w,
                );
                d.port = 8000 + i as u16;
                d
            })
            .collect()
    };
    for ws in [
        &[1, 2, 3][..],
        &[100, 200, 1000],
        &[1, 1000],
        &[0, 5, 5],
        &[0, 0],
        &[7],
    ] {
        let dests = mk(ws);
        assert_eq!(
            MhScheduler::new(&dests).slots(),
            ref_mh_table(&dests),
            "weights {ws:?}"
        );
    }
    // IPv6 servers.
    let v6: Vec<SchedDest> = (1..=4)
        .map(|i| {
            dest(
                i,
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16)),
                i as i32,
            )
        })
        .collect();
    assert_eq!(MhScheduler::new(&v6).slots(), ref_mh_table(&v6));
    // Weights 1 and 1000: gcd 1, 1000 needs 10 bits -> shift 4: turns 1 and 62.
    let t = MhScheduler::new(&mk(&[1, 1000])).slots();
    let a = t.iter().filter(|s| **s == Some(DestId(1))).count();
    // One slot in every 63 claims goes to the first server: 4093 / 63 = 64.97.
    assert!((64..=66).contains(&a), "{a}");
    assert_eq!(MhScheduler::new(&mk(&[0, 0])).slots(), vec![None; M]);
}

#[test]
fn mh_quiesce_keeps_table_and_other_keys() {
    let mut dests = abc();
    let mut s = new_scheduler("mh", &dests).unwrap();
    let clients: Vec<IpAddr> = addrs(5000, 23).into_iter().map(v4n).collect();
    let before: Vec<Option<usize>> = clients
        .iter()
        .map(|a| Pkt::from(*a).run(s.as_mut(), &dests))
        .collect();
    dests[1].weight = 0; // last_weight stays 1
    s.dests_changed(DestChange::Updated(DestId(2)), &dests);
    let table = ref_mh_table(&abc());
    for (a, b) in clients.iter().zip(&before) {
        let got = Pkt::from(*a).run(s.as_mut(), &dests);
        if *b == Some(1) {
            assert_eq!(got, None, "{a}: quiesced server, no fallback");
            // Reference fallback: probe roffset = (k + h) % M.
            let h = ref_mh_slot(*a, 0, 0);
            let want = (0..M as u64).find_map(|k| {
                let id = table[ref_mh_slot(*a, 0, (k + h as u64) % M as u64)].unwrap();
                (id != DestId(2)).then(|| index_of(&dests, id))
            });
            assert_eq!(
                Pkt::from(*a).flags(FALLBACK).run(s.as_mut(), &dests),
                want,
                "{a}"
            );
        } else {
            assert_eq!(got, *b, "{a}: other servers' keys do not move");
            assert_eq!(Pkt::from(*a).flags(FALLBACK).run(s.as_mut(), &dests), *b);
        }
    }
    // Overloaded is unavailable too.
    dests[1].weight = 1;
    dests[0].overloaded = true;
    for (a, b) in clients.iter().zip(&before).take(500) {
        let got = Pkt::from(*a).run(s.as_mut(), &dests);
        assert_eq!(got, if *b == Some(0) { None } else { *b });
    }
}

#[test]
fn mh_removal_follows_list_and_empty_list() {
    let dests = abc();
    let mut s = new_scheduler("mh", &dests).unwrap();
    let after = vec![dests[0], dests[2]];
    s.dests_changed(
        DestChange::Removing {
            id: DestId(2),
            index: 1,
        },
        &dests,
    );
    s.dests_changed(DestChange::Removed(DestId(2)), &after);
    let table = ref_mh_table(&after);
    for a in addrs(500, 29).into_iter().map(v4n) {
        let want = index_of(&after, table[ref_mh_slot(a, 0, 0)].unwrap());
        assert_eq!(Pkt::from(a).run(s.as_mut(), &after), Some(want));
    }
    let mut e = new_scheduler("mh", &[]).unwrap();
    assert_eq!(
        Pkt::from(v4(1, 2, 3, 4))
            .flags(FALLBACK)
            .run(e.as_mut(), &[]),
        None
    );
}

/// Keys of the servers that stay, moved when `victim` leaves `dests`.
fn mh_disruption(dests: &[SchedDest], victim: usize, keys: &[IpAddr]) -> (usize, usize) {
    let mut s = new_scheduler("mh", dests).unwrap();
    let before: Vec<DestId> = keys
        .iter()
        .map(|a| dests[Pkt::from(*a).run(s.as_mut(), dests).unwrap()].id)
        .collect();
    let after: Vec<SchedDest> = dests
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, d)| *d)
        .collect();
    s.dests_changed(DestChange::Removed(dests[victim].id), &after);
    let (mut moved, mut extra) = (0, 0);
    for (a, b) in keys.iter().zip(&before) {
        let now = after[Pkt::from(*a).run(s.as_mut(), &after).unwrap()].id;
        assert_ne!(
            now, dests[victim].id,
            "a key still maps to the removed server"
        );
        if now != *b {
            moved += 1;
            if *b != dests[victim].id {
                extra += 1;
            }
        }
    }
    (moved, extra)
}

/// Removing one of N equal servers moves the keys it had (about 1/N) and
/// few others. Maglev with a 4093-slot table is not minimally disruptive:
/// some slots of surviving servers change owner too. Over many server sets
/// (random addresses, N from 3 to 11, every server removed in turn) the keys
/// of surviving servers that move average under 2% and stay under 6% for
/// any one removal. (Pathological sets exist: when two servers' hashes give
/// the same Maglev skip, e.g. 10.13.78.192 and .195, removing one of N = 4
/// moved 19% extra; that is the kernel's algorithm, so the test draws its
/// address sets at random rather than searching for the worst.)
#[test]
fn mh_removal_disruption_is_bounded() {
    let keys: Vec<IpAddr> = addrs(4_000, 77).into_iter().map(v4n).collect();
    let (mut total_extra, mut removals) = (0usize, 0usize);
    let mut seed: u32 = 12_345;
    for round in 0..24 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let base = (seed >> 16) % 0xFFFF + 1;
        let n = 3 + round % 9;
        let dests: Vec<SchedDest> = (0..n)
            .map(|i| dest(i as u64 + 1, v4n(0x0A00_0000 + base * 16 + i as u32), 1))
            .collect();
        for victim in 0..n {
            let (moved, extra) = mh_disruption(&dests, victim, &keys);
            assert!(
                extra * 100 <= keys.len() * 6,
                "base {base} n {n} victim {victim}: {extra} of {} keys of surviving servers moved",
                keys.len()
            );
            assert!(moved >= extra);
            total_extra += extra;
            removals += 1;
        }
    }
    let mean = total_extra as f64 / removals as f64 / keys.len() as f64;
    assert!(mean <= 0.02, "mean extra disruption {mean:.4}");
}

// ------------------------------------------------------------------- lblc

/// Reference locality bucket: top 10 bits of the low 32 bits of
/// fold * 0x61C88647.
fn ref_locality_bucket(a: IpAddr) -> usize {
    (((ref_fold(a) * 0x61C8_8647) % (1 << 32)) >> 22) as usize
}

#[test]
fn locality_bucket_matches_reference() {
    // By hand: 0.0.0.2 -> 0xC3910C8E >> 22 = 0x30E = 782.
    assert_eq!(ref_locality_bucket(v4(0, 0, 0, 2)), 782);
    for a in addrs(1000, 31).into_iter().map(v4n) {
        assert_eq!(hash::locality_bucket(a), ref_locality_bucket(a));
    }
}

fn with_conns(mut d: SchedDest, active: u32, inactive: u32) -> SchedDest {
    d.active = active;
    d.inactive = inactive;
    d
}

#[test]
fn lblc_caches_and_applies_overload_rule() {
    let vip = v4(203, 0, 113, 7);
    // A w2 act3 -> oh 768/2=384; B w1 act1 -> 256; C w4 act 5 -> 320: WLC = B.
    let mut dests = vec![
        with_conns(dest(1, v4(192, 168, 1, 1), 2), 3, 0),
        with_conns(dest(2, v4(192, 168, 1, 2), 1), 1, 0),
        with_conns(dest(3, v4(192, 168, 1, 3), 4), 5, 0),
    ];
    let mut s = new_scheduler("lblc", &dests).unwrap();
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(1));
    // B gets busier than C by WLC, but is not "overloaded" (active 1 <= w 1).
    dests[1].inactive = 300;
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(1));
    // B: active 2 > weight 1, but nobody has active*2 < weight -> keep B.
    dests[1].active = 2;
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(1));
    // Now C has active 1: 2 < 4 -> B is overloaded: WLC over all.
    // A: 768*1... oh A = 768, B = 812, C = 256 -> C (256/4 least).
    dests[2].active = 1;
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(2));
    // And C is cached from now on, even if A becomes less loaded.
    dests[0].active = 0;
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(2));
    // Another VIP has its own entry: WLC now is A (0 / 2).
    assert_eq!(Pkt::to(v4(203, 0, 113, 8)).run(s.as_mut(), &dests), Some(0));
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(2));
}

#[test]
fn lblc_weight0_removed_and_threshold_flag() {
    let vip = v4(203, 0, 113, 9);
    let mut dests = abc();
    let mut s = LblcScheduler::new(&dests);
    // All idle: WLC picks the first, A.
    assert_eq!(Pkt::to(vip).run(&mut s, &dests), Some(0));
    assert_eq!(s.cached(vip), Some(DestId(1)));
    // Threshold OVERLOAD flag on the cached server does not stop lblc.
    dests[0].overloaded = true;
    assert_eq!(Pkt::to(vip).run(&mut s, &dests), Some(0));
    // Weight 0 does: WLC skips A (flagged) and picks B.
    dests[0].weight = 0;
    dests[0].overloaded = false;
    assert_eq!(Pkt::to(vip).run(&mut s, &dests), Some(1));
    assert_eq!(s.cached(vip), Some(DestId(2)));
    // Replacing an entry keeps one entry but bumps the kernel's counter.
    assert_eq!(s.table().len(), 1);
    assert_eq!(s.table().counted_entries(), 2);
    // B leaves the list: its entry is unusable -> WLC over [A(w0), C] = C.
    let after = vec![dests[0], dests[2]];
    s.dests_changed(DestChange::Removed(DestId(2)), &after);
    assert_eq!(Pkt::to(vip).run(&mut s, &after), Some(1));
    assert_eq!(s.cached(vip), Some(DestId(3)));
    // Nothing usable: None, and the entry stays.
    let none = vec![with_conns(dest(9, v4(1, 1, 1, 1), 0), 0, 0)];
    assert_eq!(Pkt::to(vip).run(&mut s, &none), None);
    assert_eq!(s.cached(vip), Some(DestId(3)));
}

#[test]
fn lblc_expiry_runs_on_every_30th_tick() {
    let dests = abc();
    let mut s = LblcScheduler::new(&dests);
    let old = v4(203, 0, 113, 1);
    let fresh = v4(203, 0, 113, 2);
    Pkt::to(old).at(1000).expiring(3600).run(&mut s, &dests);
    Pkt::to(fresh).at(1000).expiring(3600).run(&mut s, &dests);
    // Ticks 1..29 (one per minute) never sweep, however old the entries.
    let mut now = 1000;
    for _ in 1..30 {
        now += 60;
        s.tick(now + 10 * 3600);
        assert_eq!(s.table().len(), 2);
    }
    // Keep `fresh` in use.
    Pkt::to(fresh)
        .at(1000 + 3600)
        .expiring(3600)
        .run(&mut s, &dests);
    // Tick 30: full sweep, entries idle >= 3600 s go.
    s.tick(1000 + 3600 + 10);
    assert_eq!(s.cached(old), None);
    assert_eq!(s.cached(fresh), Some(DestId(1)));
    // The counter restarts: 29 more quiet ticks, then the next sweep.
    for i in 1..30 {
        s.tick(1000 + 3 * 3600 + i);
        assert_eq!(s.table().len(), 1);
    }
    s.tick(1000 + 3600 + 3600);
    assert_eq!(s.table().len(), 0);
}

#[test]
fn lblc_partial_collection_when_over_full() {
    let dests = abc();
    let mut s = LblcScheduler::new(&dests);
    // Fill: entries are added while the counter is <= 16384, so 16385 fit.
    let vips: Vec<IpAddr> = (0..16_400u32).map(|i| v4n(0x0B00_0000 + i)).collect();
    for v in &vips {
        Pkt::to(*v).at(100).run(&mut s, &dests);
    }
    assert_eq!(s.table().len(), 16_385);
    let kept: Vec<IpAddr> = vips
        .iter()
        .copied()
        .filter(|v| s.cached(*v).is_some())
        .collect();
    assert_eq!(kept, vips[..16_385].to_vec());
    // Touch everything in bucket 1 except one address, recently.
    let bucket1: Vec<IpAddr> = kept
        .iter()
        .copied()
        .filter(|v| ref_locality_bucket(*v) == 1)
        .collect();
    let bucket2: Vec<IpAddr> = kept
        .iter()
        .copied()
        .filter(|v| ref_locality_bucket(*v) == 2)
        .collect();
    assert!(bucket1.len() > 2 && !bucket2.is_empty());
    for v in &bucket1[1..] {
        Pkt::to(*v).at(400).run(&mut s, &dests);
    }
    // First tick (not a full sweep): goal = (16385 - 16384) * 4 / 3 = 1.
    // From the rover (0), bucket 1 is swept first: only bucket1[0] is idle
    // >= 360 s at t = 460, so 1 entry goes and the goal is met.
    s.tick(460);
    assert_eq!(s.table().len(), 16_384);
    assert_eq!(s.cached(bucket1[0]), None);
    assert!(bucket2.iter().all(|v| s.cached(*v).is_some()));
    // Back under the limit: the next tick does nothing.
    s.tick(520);
    assert_eq!(s.table().len(), 16_384);
}

// ------------------------------------------------------------------ lblcr

#[test]
fn lblcr_set_grows_and_shrinks() {
    let vip = v4(203, 0, 113, 50);
    let exp = 1000;
    // A w1, B w1, C w4 all idle.
    let mut dests = vec![
        dest(1, v4(192, 168, 1, 1), 1),
        dest(2, v4(192, 168, 1, 2), 1),
        dest(3, v4(192, 168, 1, 3), 4),
    ];
    let mut s = LblcrScheduler::new(&dests);
    assert_eq!(
        Pkt::to(vip).at(10).expiring(exp).run(&mut s, &dests),
        Some(0)
    );
    assert_eq!(s.set(vip).unwrap().members, vec![DestId(1)]);
    // A: active 2 > 1 and C has 0*2 < 4 -> overloaded: WLC over all.
    // WLC: A oh 512/1, B 0/1, C 0/4: B first with 0 -> B (ties keep first).
    dests[0].active = 2;
    assert_eq!(
        Pkt::to(vip).at(20).expiring(exp).run(&mut s, &dests),
        Some(1)
    );
    assert_eq!(s.set(vip).unwrap().members, vec![DestId(2), DestId(1)]);
    assert_eq!(s.set(vip).unwrap().lastmod, 20);
    // Now the set's least member is B (0 vs 512): used directly.
    assert_eq!(
        Pkt::to(vip).at(30).expiring(exp).run(&mut s, &dests),
        Some(1)
    );
    // B overloaded too (active 3 > 1, C still has 0): WLC -> C, added.
    dests[1].active = 3;
    assert_eq!(
        Pkt::to(vip).at(40).expiring(exp).run(&mut s, &dests),
        Some(2)
    );
    assert_eq!(
        s.set(vip).unwrap().members,
        vec![DestId(3), DestId(2), DestId(1)]
    );
    // Set min: A 512*... A oh 512 w1, B 768 w1, C 0 w4 -> C.
    assert_eq!(
        Pkt::to(vip).at(50).expiring(exp).run(&mut s, &dests),
        Some(2)
    );
    // Not yet expired at lastmod + exp exactly.
    assert_eq!(
        Pkt::to(vip).at(40 + exp).expiring(exp).run(&mut s, &dests),
        Some(2)
    );
    assert_eq!(s.set(vip).unwrap().members.len(), 3);
    // Past it: the most loaded member (B, 768/1) is dropped; C still used.
    assert_eq!(
        Pkt::to(vip).at(41 + exp).expiring(exp).run(&mut s, &dests),
        Some(2)
    );
    assert_eq!(s.set(vip).unwrap().members, vec![DestId(3), DestId(1)]);
    assert_eq!(s.set(vip).unwrap().lastmod, 41 + exp);
    // Next drop needs another full period; then A (512) goes, leaving C.
    assert_eq!(
        Pkt::to(vip)
            .at(41 + 2 * exp)
            .expiring(exp)
            .run(&mut s, &dests),
        Some(2)
    );
    assert_eq!(s.set(vip).unwrap().members.len(), 2);
    assert_eq!(
        Pkt::to(vip)
            .at(42 + 2 * exp)
            .expiring(exp)
            .run(&mut s, &dests),
        Some(2)
    );
    assert_eq!(s.set(vip).unwrap().members, vec![DestId(3)]);
    // A single member is never dropped.
    assert_eq!(
        Pkt::to(vip)
            .at(50 + 5 * exp)
            .expiring(exp)
            .run(&mut s, &dests),
        Some(2)
    );
    assert_eq!(s.set(vip).unwrap().members, vec![DestId(3)]);
}

#[test]
fn lblcr_member_states() {
    let vip = v4(203, 0, 113, 60);
    let mut dests = abc();
    let mut s = new_scheduler("lblcr", &dests).unwrap();
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(0));
    // A flagged OVERLOAD: the set has no usable member -> WLC (skips A) = B.
    dests[0].overloaded = true;
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(1));
    dests[0].overloaded = false;
    // Set [B, A], both idle: B (first) wins ties.
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &dests), Some(1));
    // B leaves the list: the set's A is used.
    let after = vec![dests[0], dests[2]];
    s.dests_changed(DestChange::Removed(DestId(2)), &after);
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &after), Some(0));
    // Nothing usable at all.
    let none: Vec<SchedDest> = after
        .iter()
        .map(|d| SchedDest { weight: 0, ..*d })
        .collect();
    assert_eq!(Pkt::to(vip).run(s.as_mut(), &none), None);
}

#[test]
fn lblcr_expiry_via_tick() {
    let dests = abc();
    let mut s = LblcrScheduler::new(&dests);
    let a = v4(203, 0, 113, 70);
    let b = v4(203, 0, 113, 71);
    Pkt::to(a).at(0).expiring(600).run(&mut s, &dests);
    Pkt::to(b).at(0).expiring(600).run(&mut s, &dests);
    Pkt::to(b).at(1700).expiring(600).run(&mut s, &dests);
    for i in 1..30u64 {
        s.tick(i * 60);
    }
    assert_eq!(s.table().len(), 2);
    // 30th tick at t = 1800: a idle 1800 >= 600 goes; b idle 100 stays.
    s.tick(1800);
    assert!(s.set(a).is_none());
    assert!(s.set(b).is_some());
}

#[test]
fn sh_fallback_probe_order_matches_reference() {
    // Five servers, one overloaded, one quiesced: which server a probe
    // lands on first depends on the exact probe order.
    // (Weights 2,1,3,1,1,1,2 give a table period of 11, prime to 256, so
    // other probe orders would land on other servers.)
    let ws = [2, 1, 3, 1, 1, 1, 2];
    let mut dests: Vec<SchedDest> = (1..=7)
        .map(|i| dest(i, v4(10, 3, 0, i as u8), ws[i as usize - 1]))
        .collect();
    dests[2].overloaded = true;
    dests[4].weight = 0;
    let mut s = new_scheduler("sh", &dests).unwrap();
    let mut five: Vec<SchedDest> = (1..=5)
        .map(|i| dest(i, v4(10, 3, 0, i as u8), [2, 1, 3, 1, 1][i as usize - 1]))
        .collect();
    five[4].weight = 0;
    let mut probed = 0;
    for a in addrs(3000, 41).into_iter().map(v4n) {
        for (flags, port) in [(FALLBACK, 0u16), (FALLBACK | PORT, 4242)] {
            let want = ref_sh_fallback(&dests, a, port);
            let got = Pkt::from(a).port(4242).flags(flags).run(s.as_mut(), &dests);
            assert_eq!(got, want, "{a} port {port}");
        }
        if Pkt::from(a).run(s.as_mut(), &dests).is_none() {
            probed += 1;
        }
    }
    assert!(probed > 500, "{probed}");
    // By hand. Table (weights 2,1,3,1,1, the last quiesced server taking
    // 1): pattern A A B C C C D E, period 8. With A overloaded instead of C:
    let dests = {
        five[0].overloaded = true;
        five
    };
    s.dests_changed(DestChange::Removed(DestId(7)), &dests);
    // 10.0.0.6 -> bucket 16 -> 16 % 8 = 0 -> A (overloaded); k = 0 probes
    // (16 + 16) % 256 = 32 -> A; k = 1: 33 -> A; k = 2: 34 -> 34 % 8 = 2 -> B.
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 6))
            .flags(FALLBACK)
            .run(s.as_mut(), &dests),
        Some(1)
    );
    // 10.0.0.1 -> bucket 39 -> 39 % 8 = 7 -> E (weight 0);
    // k = 0: (39 + 39) % 256 = 78 -> 78 % 8 = 6 -> D.
    assert_eq!(
        Pkt::from(v4(10, 0, 0, 1))
            .flags(FALLBACK)
            .run(s.as_mut(), &dests),
        Some(3)
    );
}
