//! The state file: the director's rules as a JSON list of `Command`s, so a
//! restarted rvsd comes back with the same table.
//!
//! The file holds `{"rvsd_state":1,"commands":[...]}` (a bare JSON array of
//! commands is accepted too). It is produced from the engine's snapshot:
//! non-default knobs, non-default timeouts, then each service followed by
//! its real servers, oldest first so that reloading rebuilds the kernel's
//! newest-first list order. It is replaced atomically: written to a temp
//! file in the same directory, fsynced, renamed over the old one, and the
//! directory fsynced, so a crash at any point leaves either the old or the
//! new rules, never a torn file. Counters, connections and scheduler
//! positions are not kept.

use anyhow::{bail, Context};
use rvs_core::snapshot::Timeouts;
use rvs_core::{Command, Engine};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Format version written into every state file.
pub const STATE_FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    rvsd_state: u32,
    commands: Vec<Command>,
}

/// The commands that rebuild `engine`'s rules in a fresh engine.
pub fn commands_from_engine(engine: &Engine) -> Vec<Command> {
    let mut commands: Vec<Command> = engine
        .knobs()
        .non_default()
        .into_iter()
        .map(|(name, value)| Command::SetKnob {
            name: name.to_string(),
            value,
        })
        .collect();
    let timeouts = engine.timeouts();
    if timeouts != Timeouts::default() {
        commands.push(Command::SetTimeouts {
            tcp: timeouts.tcp,
            tcpfin: timeouts.tcpfin,
            udp: timeouts.udp,
        });
    }
    for service in engine.snapshot().services {
        let key = service.config.key;
        commands.push(Command::AddService(service.config));
        // The snapshot lists real servers newest first; adding them oldest
        // first reproduces that order.
        for dest in service.dests.into_iter().rev() {
            commands.push(Command::AddDest {
                service: key,
                dest: dest.config,
            });
        }
    }
    commands
}

/// Read a state file. `Ok(None)` when it does not exist; an error naming
/// the file when it exists but cannot be read or parsed.
pub fn load(path: &Path) -> anyhow::Result<Option<Vec<Command>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read state file {}", path.display()))
        }
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let commands = match first {
        None => bail!(
            "state file {} is empty; refusing to start (remove it to start with no rules)",
            path.display()
        ),
        Some(b'[') => serde_json::from_slice::<Vec<Command>>(&bytes).with_context(|| {
            format!(
                "state file {} is corrupt; refusing to start",
                path.display()
            )
        })?,
        Some(_) => {
            let file: StateFile = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "state file {} is corrupt; refusing to start",
                    path.display()
                )
            })?;
            if file.rvsd_state != STATE_FORMAT {
                bail!(
                    "state file {} has format {}, this rvsd reads format {STATE_FORMAT}; refusing to start",
                    path.display(),
                    file.rvsd_state
                );
            }
            file.commands
        }
    };
    Ok(Some(commands))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Replace the state file with `commands`, atomically and durably.
pub fn save(path: &Path, commands: &[Command]) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(&StateFile {
        rvsd_state: STATE_FORMAT,
        commands: commands.to_vec(),
    })
    .context("cannot encode state")?;
    json.push(b'\n');
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .with_context(|| format!("state file path {} has no file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let write_tmp = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()
    };
    if let Err(e) = write_tmp().and_then(|()| fs::rename(&tmp, path)) {
        // A full disk or a read-only directory must not leave a partial
        // temp file behind on every save.
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))?;
    Ok(())
}

/// Make sure the state file's directory exists, so the first save works.
pub fn prepare_dir(path: &Path) -> anyhow::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
    use std::net::{IpAddr, Ipv4Addr};

    fn ip(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 168, 10, d))
    }

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip(100),
            port: 80,
        }
    }

    fn rules() -> Vec<Command> {
        let mut svc = ServiceConfig::new(key());
        svc.scheduler = "rr".into();
        let mut d1 = DestConfig::new(ip(1), 8080);
        d1.fwd = FwdMethod::Masq;
        d1.weight = 3;
        d1.u_threshold = 50;
        d1.l_threshold = 10;
        let mut d2 = DestConfig::new(ip(2), 8080);
        d2.fwd = FwdMethod::Masq;
        vec![
            Command::AddService(svc),
            Command::AddDest {
                service: key(),
                dest: d1,
            },
            Command::AddDest {
                service: key(),
                dest: d2,
            },
            Command::SetTimeouts {
                tcp: 600,
                tcpfin: 0,
                udp: 0,
            },
            Command::SetKnob {
                name: "expire_nodest_conn".into(),
                value: 1,
            },
        ]
    }

    #[test]
    fn commands_rebuild_the_same_rules_in_the_same_order() {
        let mut engine = Engine::new();
        engine.apply_all(rules()).expect("valid rules");
        let cmds = commands_from_engine(&engine);
        // Knob, then timeouts (tcpfin/udp kept at their defaults 120/300),
        // then the service and its servers in the order they were added.
        assert_eq!(
            cmds.first(),
            Some(&Command::SetKnob {
                name: "expire_nodest_conn".into(),
                value: 1
            })
        );
        assert_eq!(
            cmds.get(1),
            Some(&Command::SetTimeouts {
                tcp: 600,
                tcpfin: 120,
                udp: 300
            })
        );
        assert_eq!(cmds.get(2..), rules().get(..3));
        let mut again = Engine::new();
        again.apply_all(cmds).expect("rebuild");
        assert_eq!(again.snapshot(), engine.snapshot());
        assert_eq!(again.timeouts(), engine.timeouts());
        assert_eq!(again.knobs(), engine.knobs());
    }

    #[test]
    fn empty_engine_saves_no_commands() {
        assert!(commands_from_engine(&Engine::new()).is_empty());
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert!(load(&path).expect("missing is fine").is_none());
        save(&path, &rules()).expect("save");
        assert_eq!(load(&path).expect("load"), Some(rules()));
        save(&path, &[]).expect("save again");
        assert_eq!(load(&path).expect("load"), Some(Vec::new()));
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_failed_save_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        save(&path, &rules()).expect("save");
        // The temp file's name is taken by a directory: writing it fails.
        let tmp = dir.path().join(".state.json.tmp");
        fs::create_dir(&tmp).expect("mkdir");
        fs::write(tmp.join("x"), b"").expect("block removal");
        let err = format!("{:#}", save(&path, &[]).expect_err("cannot write"));
        assert!(err.contains("state.json"), "{err}");
        assert_eq!(load(&path).expect("old file"), Some(rules()));
        // A plain leftover file from a failed rename is removed.
        fs::remove_file(tmp.join("x")).expect("rm");
        fs::remove_dir(&tmp).expect("rmdir");
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).expect("mkdir");
        let into_dir = sub.clone();
        // Renaming a file over a non-empty directory fails after the temp
        // file was written.
        fs::write(sub.join("keep"), b"").expect("write");
        assert!(save(&into_dir, &rules()).is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().ends_with(".tmp")),
            "{left:?}"
        );
    }

    #[test]
    fn bare_array_is_accepted_and_corruption_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        fs::write(&path, b"[\"Clear\"]").expect("write");
        assert_eq!(load(&path).expect("load"), Some(vec![Command::Clear]));
        for bad in [
            &b"{\"rvsd_state\":1,\"commands\":[\"Cle"[..],
            b"  \n",
            b"{\"rvsd_state\":9,\"commands\":[]}",
        ] {
            fs::write(&path, bad).expect("write");
            let err = format!("{:#}", load(&path).expect_err("refused"));
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("refusing to start"), "{err}");
        }
    }
}
