//! A popt-compatible option scanner for ipvsadm's option table.
//!
//! It reproduces the parts of libpopt's `poptGetNextOpt` that ipvsadm's
//! behaviour depends on: bundled short options (`-Lnc`), a short option's
//! argument glued on (`-p600`, `-w=3`) or in the next word, `--long=value`,
//! exact long names (no abbreviations), optional arguments that are only
//! taken from the next word when it does not start with `-` (`-p -1` leaves
//! `-1` to be parsed as an option), non-options collected as leftovers, `--`
//! ending option processing, and the "bad option" text being the last argv
//! word consumed.

use std::fmt;

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgKind {
    None,
    Required,
    Optional,
}

/// Every option rvsadm knows (ipvsadm's plus the rvs extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opt {
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    TcpService,
    UdpService,
    SctpService,
    FwmarkService,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    /// rvs extension: `--json` listings.
    Json,
    /// rvs extension: `--sysctl [name[=value]]`.
    Sysctl,
}

struct Spec {
    long: &'static str,
    short: Option<u8>,
    kind: ArgKind,
    opt: Opt,
}

const fn spec(long: &'static str, short: Option<u8>, kind: ArgKind, opt: Opt) -> Spec {
    Spec {
        long,
        short,
        kind,
        opt,
    }
}

use ArgKind::{None as N, Optional as O, Required as R};

static TABLE: &[Spec] = &[
    spec("add-service", Some(b'A'), N, Opt::AddService),
    spec("edit-service", Some(b'E'), N, Opt::EditService),
    spec("delete-service", Some(b'D'), N, Opt::DeleteService),
    spec("clear", Some(b'C'), N, Opt::Clear),
    spec("list", Some(b'L'), N, Opt::List),
    spec("list", Some(b'l'), N, Opt::List),
    spec("zero", Some(b'Z'), N, Opt::Zero),
    spec("add-server", Some(b'a'), N, Opt::AddServer),
    spec("edit-server", Some(b'e'), N, Opt::EditServer),
    spec("delete-server", Some(b'd'), N, Opt::DeleteServer),
    spec("set", None, N, Opt::Set),
    spec("help", Some(b'h'), N, Opt::Help),
    spec("version", Some(b'v'), N, Opt::Version),
    spec("restore", Some(b'R'), N, Opt::Restore),
    spec("save", Some(b'S'), N, Opt::Save),
    spec("start-daemon", None, R, Opt::StartDaemon),
    spec("stop-daemon", None, R, Opt::StopDaemon),
    spec("tcp-service", Some(b't'), R, Opt::TcpService),
    spec("udp-service", Some(b'u'), R, Opt::UdpService),
    spec("sctp-service", None, R, Opt::SctpService),
    spec("fwmark-service", Some(b'f'), R, Opt::FwmarkService),
    spec("scheduler", Some(b's'), R, Opt::Scheduler),
    spec("persistent", Some(b'p'), O, Opt::Persistent),
    spec("netmask", Some(b'M'), R, Opt::Netmask),
    spec("real-server", Some(b'r'), R, Opt::RealServer),
    spec("masquerading", Some(b'm'), N, Opt::Masquerading),
    spec("ipip", Some(b'i'), N, Opt::Ipip),
    spec("gatewaying", Some(b'g'), N, Opt::Gatewaying),
    spec("weight", Some(b'w'), R, Opt::Weight),
    spec("u-threshold", Some(b'x'), R, Opt::UThreshold),
    spec("l-threshold", Some(b'y'), R, Opt::LThreshold),
    spec("numeric", Some(b'n'), N, Opt::Numeric),
    spec("connection", Some(b'c'), N, Opt::Connection),
    spec("mcast-interface", None, R, Opt::McastInterface),
    spec("syncid", None, R, Opt::SyncId),
    spec("timeout", None, N, Opt::Timeout),
    spec("daemon", None, N, Opt::Daemon),
    spec("stats", None, N, Opt::Stats),
    spec("rate", None, N, Opt::Rate),
    spec("thresholds", None, N, Opt::Thresholds),
    spec("persistent-conn", None, N, Opt::PersistentConn),
    spec("nosort", None, N, Opt::NoSort),
    spec("sort", None, N, Opt::Sort),
    spec("exact", Some(b'X'), N, Opt::Exact),
    spec("ipv6", Some(b'6'), N, Opt::Ipv6),
    spec("ops", Some(b'o'), N, Opt::Ops),
    spec("pe", None, R, Opt::Pe),
    spec("sched-flags", Some(b'b'), R, Opt::SchedFlags),
    spec("mcast-group", None, R, Opt::McastGroup),
    spec("mcast-port", None, R, Opt::McastPort),
    spec("mcast-ttl", None, R, Opt::McastTtl),
    spec("sync-maxlen", None, R, Opt::SyncMaxlen),
    spec("tun-info", None, N, Opt::TunInfo),
    spec("tun-type", None, R, Opt::TunType),
    spec("tun-port", None, R, Opt::TunPort),
    spec("tun-nocsum", None, N, Opt::TunNocsum),
    spec("tun-csum", None, N, Opt::TunCsum),
    spec("tun-remcsum", None, N, Opt::TunRemcsum),
    spec("json", None, N, Opt::Json),
    spec("sysctl", None, O, Opt::Sysctl),
];

/// A popt error (`poptStrerror` text plus `poptBadOption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoptError {
    /// The last argv word consumed when the error happened.
    pub bad: String,
    pub reason: &'static str,
}

impl fmt::Display for PoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.bad, self.reason)
    }
}

const BADOPT: &str = "unknown option";
const NOARG: &str = "missing argument";
const UNWANTED: &str = "option does not take an argument";

/// One step of the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Opt { opt: Opt, arg: Option<String> },
    End,
}

/// The scanner state (`poptContext` for one argv).
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    args: &'a [String],
    next: usize,
    /// Rest of a short-option bundle: (argv index, byte offset).
    bundle: Option<(usize, usize)>,
    rest_leftover: bool,
    leftovers: Vec<String>,
}

impl<'a> Scanner<'a> {
    /// `args` excludes the program name.
    pub(crate) fn new(args: &'a [String]) -> Scanner<'a> {
        Scanner {
            args,
            next: 0,
            bundle: None,
            rest_leftover: false,
            leftovers: Vec::new(),
        }
    }

    /// `poptBadOption(..., POPT_BADOPTION_NOALIAS)`: the last word consumed.
    pub(crate) fn last_word(&self) -> String {
        self.next
            .checked_sub(1)
            .and_then(|i| self.args.get(i))
            .cloned()
            .unwrap_or_default()
    }

    /// Non-option words, in order (`poptGetArg`).
    pub(crate) fn take_leftovers(&mut self) -> Vec<String> {
        std::mem::take(&mut self.leftovers)
    }

    fn error(&self, reason: &'static str) -> PoptError {
        PoptError {
            bad: self.last_word(),
            reason,
        }
    }

    /// `poptGetNextOpt`.
    pub(crate) fn next_opt(&mut self) -> Result<Step, PoptError> {
        loop {
            let mut long_arg: Option<String> = None;
            let spec: &Spec;
            if let Some((idx, off)) = self.bundle.take() {
                let word = self.args[idx].as_bytes();
                let c = word[off];
                spec = TABLE
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| self.error(BADOPT))?;
                if off + 1 < word.len() {
                    self.bundle = Some((idx, off + 1));
                }
            } else {
                if self.next >= self.args.len() {
                    return Ok(Step::End);
                }
                let idx = self.next;
                let word = &self.args[idx];
                self.next += 1;
                if self.rest_leftover || !word.starts_with('-') || word == "-" {
                    self.leftovers.push(word.clone());
                    continue;
                }
                if word == "--" {
                    self.rest_leftover = true;
                    continue;
                }
                if let Some(body) = word.strip_prefix("--") {
                    let (name, arg) = match body.split_once('=') {
                        Some((n, a)) => (n, Some(a.to_string())),
                        None => (body, None),
                    };
                    spec = TABLE
                        .iter()
                        .find(|s| s.long == name)
                        .ok_or_else(|| self.error(BADOPT))?;
                    long_arg = arg;
                } else {
                    // Single dash: no option of the table is a one-dash long
                    // option, so this is a bundle of short options.
                    self.bundle = Some((idx, 1));
                    continue;
                }
            }
            return self.finish(spec, long_arg);
        }
    }

    fn finish(&mut self, spec: &Spec, long_arg: Option<String>) -> Result<Step, PoptError> {
        let bundle_rest = self.bundle.map(|(idx, off)| &self.args[idx][off..]);
        if spec.kind == ArgKind::None {
            if long_arg.is_some() || bundle_rest.is_some_and(|r| r.starts_with('=')) {
                return Err(self.error(UNWANTED));
            }
            return Ok(Step::Opt {
                opt: spec.opt,
                arg: None,
            });
        }
        let arg = if let Some(a) = long_arg {
            Some(a)
        } else if let Some(rest) = bundle_rest {
            let rest = rest.strip_prefix('=').unwrap_or(rest).to_string();
            self.bundle = None;
            Some(rest)
        } else if self.next >= self.args.len() {
            if spec.kind != ArgKind::Optional {
                return Err(self.error(NOARG));
            }
            None
        } else if spec.kind == ArgKind::Optional && self.args[self.next].starts_with('-') {
            None
        } else {
            self.next += 1;
            Some(self.args[self.next - 1].clone())
        };
        Ok(Step::Opt { opt: spec.opt, arg })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(words: &[&str]) -> (Vec<Result<Step, PoptError>>, Vec<String>) {
        let args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let mut s = Scanner::new(&args);
        let mut out = Vec::new();
        loop {
            let r = s.next_opt();
            let stop = !matches!(r, Ok(Step::Opt { .. }));
            out.push(r);
            if stop {
                break;
            }
        }
        (out, s.take_leftovers())
    }

    fn o(opt: Opt, arg: Option<&str>) -> Result<Step, PoptError> {
        Ok(Step::Opt {
            opt,
            arg: arg.map(str::to_string),
        })
    }

    #[test]
    fn bundles_and_args() {
        let (r, _) = scan(&["-Lnc"]);
        assert_eq!(
            r,
            vec![
                o(Opt::List, None),
                o(Opt::Numeric, None),
                o(Opt::Connection, None),
                Ok(Step::End)
            ]
        );
        let (r, _) = scan(&["-Ap600"]);
        assert_eq!(
            r,
            vec![
                o(Opt::AddService, None),
                o(Opt::Persistent, Some("600")),
                Ok(Step::End)
            ]
        );
        let (r, _) = scan(&["-p", "-1"]);
        assert_eq!(
            r,
            vec![
                o(Opt::Persistent, None),
                Err(PoptError {
                    bad: "-1".into(),
                    reason: BADOPT
                })
            ]
        );
        let (r, _) = scan(&["--weight=3", "-w=4", "-t", "-x"]);
        assert_eq!(
            r,
            vec![
                o(Opt::Weight, Some("3")),
                o(Opt::Weight, Some("4")),
                o(Opt::TcpService, Some("-x")),
                Ok(Step::End)
            ]
        );
        let (r, left) = scan(&["a", "-L", "--", "-n"]);
        assert_eq!(r, vec![o(Opt::List, None), Ok(Step::End)]);
        assert_eq!(left, vec!["a".to_string(), "-n".to_string()]);
        let (r, _) = scan(&["-At"]);
        assert_eq!(
            r,
            vec![
                o(Opt::AddService, None),
                Err(PoptError {
                    bad: "-At".into(),
                    reason: NOARG
                })
            ]
        );
        let (r, _) = scan(&["--numeric=1"]);
        assert_eq!(
            r,
            vec![Err(PoptError {
                bad: "--numeric=1".into(),
                reason: UNWANTED
            })]
        );
        let (r, _) = scan(&["--num"]);
        assert_eq!(
            r,
            vec![Err(PoptError {
                bad: "--num".into(),
                reason: BADOPT
            })]
        );
    }
}
