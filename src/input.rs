//! Reading a whole input file (an incident export, a detection rule) with a size limit: files
//! are parsed whole, at several times their size in memory, so a file far larger than any real
//! one is refused with its size instead of being read into an out-of-memory.

use std::io::Read;
use std::path::Path;

/// The file's bytes, or why not: a file over `limit` bytes is refused from its size before it is
/// read, and one whose size is not known ahead (a pipe, a file still growing) once it passes
/// the limit. `setting` names what raises the limit (`max_file_bytes`, `--max-input`), so the
/// refusal tells the user what to change; `None` where the limit is fixed.
pub fn read_limited(path: &Path, limit: u64, setting: Option<&str>) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    read_limited_from(file, limit, setting)
}

/// As [`read_limited`], from a file already opened (the directory source opens its files itself,
/// non-blocking, and checks what they are first).
pub fn read_limited_from(file: std::fs::File, limit: u64, setting: Option<&str>) -> Result<Vec<u8>, String> {
    let over = |prefix: String| match setting {
        Some(name) => format!("{prefix}over the limit of {limit} bytes ({name})"),
        None => format!("{prefix}over the limit of {limit} bytes"),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(over(format!("{size} bytes, ")));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(over(String::new()));
    }
    Ok(bytes)
}

/// The files under `dir` that `keep` accepts, recursively, skipping hidden files and folders
/// (`.git`, editors' swap files): how inventory and hunt folders are read.
pub(crate) fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, keep, out)?;
        } else if keep(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The line at which unclosed `[` and `{` first exceed `limit`, if they do: a YAML file nested
/// deeper than any real rule is refused before the parser recurses into it.
pub(crate) fn flow_depth_over(text: &str, limit: usize) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_is_read_and_past_it_is_refused_with_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.json");
        std::fs::write(&path, vec![b' '; 1000]).unwrap();
        assert_eq!(read_limited(&path, 1000, None).unwrap().len(), 1000);
        assert_eq!(read_limited(&path, 999, None).unwrap_err(), "1000 bytes, over the limit of 999 bytes");
        assert_eq!(
            read_limited(&path, 999, Some("--max-input")).unwrap_err(),
            "1000 bytes, over the limit of 999 bytes (--max-input)"
        );
        // A file that cannot be read is not blamed on the limit.
        let absent = read_limited(&dir.path().join("absent.json"), 10, Some("--max-input")).unwrap_err();
        assert!(absent.starts_with("cannot read: ") && !absent.contains("--max-input"), "{absent}");
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_is_cut_at_the_limit() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "head -c 5000 /dev/zero"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::os::fd::AsRawFd;
        let fd = child.stdout.as_ref().unwrap().as_raw_fd();
        let path = std::path::PathBuf::from(format!("/proc/self/fd/{fd}"));
        assert_eq!(
            read_limited(&path, 1000, Some("max_file_bytes")).unwrap_err(),
            "over the limit of 1000 bytes (max_file_bytes)"
        );
        child.wait().unwrap();
    }
}
