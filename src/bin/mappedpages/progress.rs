//! Progress bars on stderr for the long jobs (`check` of a large file,
//! `copy`), shown only when they help: on a terminal for large work, or when
//! asked for.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// A progress bar on stderr, made on the first update once the work is
/// known to be large (or showing is forced): small jobs print nothing.
pub struct LazyBar<S> {
    force: bool,
    from: u64,
    style: S,
    bar: Option<ProgressBar>,
    decided: bool,
    plain: bool,
}

impl<S> LazyBar<S>
where
    S: Fn() -> Result<ProgressStyle, indicatif::style::TemplateError>,
{
    pub fn new(force: bool, from: u64, style: S) -> Self {
        LazyBar {
            force,
            from,
            style,
            bar: None,
            decided: false,
            plain: false,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if !self.decided {
            self.decided = true;
            self.plain = !std::io::stderr().is_terminal();
            self.bar = self.make(total);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    fn make(&self, total: u64) -> Option<ProgressBar> {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal && (self.force || total >= self.from) {
            ProgressDrawTarget::stderr()
        } else if self.force {
            // Forced into a pipe or a file: plain redrawn lines, without the
            // cursor movements a terminal understands.
            ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 4)
        } else {
            return None;
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // A template that does not parse is a bug here, not the user's
        // problem: fall back to the default bar rather than fail the job.
        if let Ok(style) = (self.style)() {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(bar)
    }

    /// Leaves the bar's last state on screen, if one was shown: full when
    /// the job `succeeded`, where it stopped otherwise.
    pub fn finish(&self, succeeded: bool) {
        let Some(bar) = &self.bar else { return };
        if succeeded {
            bar.finish();
        } else {
            bar.abandon();
        }
        // A terminal's line is padded to its width, so what follows starts
        // on the next line by itself; a pipe needs the newline.
        if self.plain {
            eprintln!();
        }
    }
}

/// Stderr when it is not a terminal: each redraw starts with a carriage
/// return (the bar is one line).
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr().lock(), "{s}")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr().lock(), "{s}")
    }

    fn clear_line(&self) -> std::io::Result<()> {
        write!(std::io::stderr().lock(), "\r")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}
