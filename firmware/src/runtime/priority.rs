//! Scheduling priority of the calling thread.
//!
//! The JavaScript workers run handlers back to back while the HTTP threads wake for a few
//! microseconds at a time (read a request, send an answer). At equal priority the
//! kernel's fair scheduler let a woken HTTP thread wait behind a worker's time slice,
//! which was most of serverless p99 at 50 connections (5.1-7.5 ms). With the workers
//! five nice levels below, the HTTP threads run as soon as they wake: p99 3.6-5.1 ms, and
//! requests per second no lower (see the README's serverless numbers).

/// Lowers the calling thread's priority by `step` nice levels (capped at 19); an error
/// leaves it unchanged.
pub fn lower_current_thread(step: i32) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid, getpriority and setpriority take plain integers and touch only
        // the calling thread's scheduling attributes. getpriority may return -1 as a
        // valid value, so errno is cleared first and read after.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            if current == -1 && *libc::__errno_location() != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setpriority(libc::PRIO_PROCESS, tid, (current + step).min(19)) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = step;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_lowered_by_the_step_and_capped() {
        let read = || {
            std::fs::read_to_string("/proc/thread-self/stat").ok().and_then(|stat| {
                // Field 19 is the nice value; the command name (field 2) may hold spaces,
                // so count from the closing parenthesis.
                let rest = &stat[stat.rfind(')')? + 2..];
                rest.split(' ').nth(16)?.parse::<i32>().ok()
            })
        };
        std::thread::spawn(move || {
            let Some(before) = read() else { return };
            lower_current_thread(5).expect("lowering is always allowed");
            assert_eq!(read(), Some((before + 5).min(19)));
            lower_current_thread(100).expect("capped");
            assert_eq!(read(), Some(19));
        })
        .join()
        .unwrap();
    }
}
