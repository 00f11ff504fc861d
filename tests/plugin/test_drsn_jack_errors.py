"""drsn-jack's handling of bad input, under a private jackd (dummy backend).

Checks:
- a FIFO or a directory as --model ends the program at once with the
  loader's message, which names the path once, and without the
  "stopped after" line of a client that ran;
- an empty or over-long --name is rejected with its own message;
- a built-in model name wins over a file of that name, which ./NAME
  reaches, and a name that is neither lists the built-in models;
- while running, a FIFO as the model is reported and the model stays;
- an over-long command line is dropped up to its newline, so no part of it
  runs as a command;
- the SIGHUP reload confirmation reaches a pipe at once;
- trailing blanks after "model PATH" are not part of the path;
- SIGTERM and SIGINT stop the client while a model load blocks in open(),
  at start-up and at run time (BLOCKING_OPEN makes open() of a path that
  contains "blocking-model" hang).

Usage: test_drsn_jack_errors.py DRSN_JACK MODEL_FILE BLOCKING_OPEN
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_testlib import LineReader, jack_server  # noqa: E402

# 4351 bytes without a newline fill drsn-jack's command line buffer.
LONG_LINE = "limit 5" + " " * 4344 + "quit"


def run_to_exit(command, timeout=10, env=None, cwd=None):
    """Run drsn-jack until it exits on its own; return the result."""
    return subprocess.run(command, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=cwd)


def check_bad_model_option(drsn_jack, path, reason):
    result = run_to_exit([drsn_jack, "--no-connect", "--name", "bad-model",
                          "--model", path])
    print(f"--model {path}: status {result.returncode}: "
          f"{result.stderr.strip()}")
    assert result.returncode == 1, result
    assert reason in result.stderr, result.stderr
    assert result.stderr.count(path) == 1, result.stderr
    assert "stopped after" not in result.stderr, result.stderr
    assert "running as" not in result.stdout, result.stdout


def check_bad_names(drsn_jack):
    """Invalid options exit with status 2, as the renderer's do."""
    result = run_to_exit([drsn_jack, "--no-connect", "--name", ""])
    assert result.returncode == 2, result
    assert "empty" in result.stderr, result.stderr

    result = run_to_exit([drsn_jack, "--no-connect", "--model", ""])
    assert result.returncode == 2, result
    assert "--model expects" in result.stderr, result.stderr

    for option, message in (("--bogus", 'unknown option "--bogus"'),
                            ("-bx", 'unknown option "-x"'),
                            ("--limit", 'option "--limit" needs a value')):
        result = run_to_exit([drsn_jack, option])
        assert result.returncode == 2, result
        assert result.stderr.startswith("drsn-jack: " + message), result.stderr

    result = run_to_exit([drsn_jack, "--no-connect", "--name", "x" * 300])
    assert result.returncode == 2, result
    assert "too long" in result.stderr, result.stderr
    assert "jackd running" not in result.stderr, result.stderr
    assert "stopped after" not in result.stderr, result.stderr


class Client:
    """A running drsn-jack with readers on stdout and stderr."""

    def __init__(self, drsn_jack, name, extra=(), env=None, cwd=None):
        self.process = subprocess.Popen(
            [drsn_jack, "--no-connect", "--name", name, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
        self.out = LineReader(self.process.stdout)
        self.err = LineReader(self.process.stderr)

    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def status(self):
        self.send("status")
        return self.out.wait_for("status ")

    def stop(self, signo=signal.SIGTERM, timeout=5):
        """Send signo and return the exit status, which must come within
        timeout seconds."""
        self.process.send_signal(signo)
        return self.process.wait(timeout=timeout)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def check_builtin_names(drsn_jack, work):
    # A directory named like the low-latency model sits in the working
    # directory; the name still selects the built-in model.
    os.mkdir(os.path.join(work, "low-latency"))
    client = Client(drsn_jack, "dut-builtin", ["--model", "low-latency"],
                    cwd=work)
    try:
        banner = client.out.wait_for("running as", timeout=20)
        assert "model low-latency, latency 480 samples" in banner, banner
        assert client.stop() == 0
    finally:
        client.kill()

    result = run_to_exit([drsn_jack, "--no-connect", "--name", "dut-file",
                          "--model", "./low-latency"], cwd=work)
    assert result.returncode == 1, result
    assert "is a directory" in result.stderr, result.stderr

    result = run_to_exit([drsn_jack, "--no-connect", "--name", "dut-typo",
                          "--model", "low_latency"], cwd=work)
    print(f"--model low_latency: {result.stderr.strip()}")
    assert result.returncode == 1, result
    assert "the built-in models are default, low-latency" in result.stderr, \
        result.stderr


def check_running_client(drsn_jack, fifo, model):
    client = Client(drsn_jack, "dut-errors")
    try:
        client.out.wait_for("running as", timeout=20)

        client.send(f"model {fifo}")
        line = client.err.wait_for("keeping the current model")
        assert "is not a regular file" in line, line
        assert line.count(fifo) == 1, line
        assert "model=default" in client.status()

        # A NUL byte spoils only its own line, so the next line runs as sent.
        client.send("limit 1\0 ignored")
        client.err.wait_for("it contains a NUL byte, ignored")
        client.send("5")
        client.err.wait_for('unknown command "5"')
        client.send("status now")
        client.err.wait_for("status takes no argument")
        client.send("quit now")
        client.err.wait_for("quit takes no argument")
        assert "limit=30.0" in client.status()

        client.send(LONG_LINE)
        client.err.wait_for("command line longer than")
        status = client.status()
        assert client.process.poll() is None, "the tail of the line ran"
        assert "limit=30.0" in status, status

        # stdout is a pipe here, so the line shows only if it is flushed.
        client.process.send_signal(signal.SIGHUP)
        client.out.wait_for("model default", timeout=5)

        client.send(f"model {model}  \t ")
        line = client.out.wait_for("model ")
        assert line == f"model {model}\n", repr(line)
        assert f"model={model}\n" in client.status()

        assert client.stop() == 0
    finally:
        client.kill()


def check_blocked_loads(drsn_jack, blocking_open, blocking_model):
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(blocking_open))

    # At start-up: the client never runs, and SIGTERM ends the program.
    client = Client(drsn_jack, "dut-blocked-start",
                    ["--model", blocking_model], env=env)
    try:
        # The signal may also come before the load starts: it waits in the
        # self-pipe until then.
        time.sleep(1.0)
        assert client.process.poll() is None, "drsn-jack did not block"
        assert client.stop(signal.SIGTERM) == 0
        client.err.wait_for("still loading")
    finally:
        client.kill()

    # At run time: commands wait for the load, other signals do not.
    client = Client(drsn_jack, "dut-blocked-run", env=env)
    try:
        client.out.wait_for("running as", timeout=20)
        client.send(f"model {blocking_model}")
        time.sleep(0.5)
        client.send("status")
        try:
            line = client.out.wait_for("status ", timeout=1.0)
        except AssertionError:
            line = None  # expected: the command waits for the load
        assert line is None, f"the load did not block: {line}"
        client.process.send_signal(signal.SIGUSR1)
        client.out.wait_for("bypass on", timeout=5)
        assert client.stop(signal.SIGINT) == 0
        client.err.wait_for("still loading")
    finally:
        client.kill()


def main():
    drsn_jack, model, blocking_open = sys.argv[1:4]
    drsn_jack = os.path.abspath(drsn_jack)  # some checks change directory
    with tempfile.TemporaryDirectory() as work, \
            jack_server("drsn-jack-errors"):
        fifo = os.path.join(work, "model.fifo")
        os.mkfifo(fifo)
        directory = os.path.join(work, "models")
        os.mkdir(directory)
        blocking_model = os.path.join(work, "blocking-model.drsn")
        shutil.copyfile(model, blocking_model)

        check_bad_model_option(drsn_jack, fifo, "is not a regular file")
        check_bad_model_option(drsn_jack, directory, "is a directory")
        check_bad_names(drsn_jack)
        check_builtin_names(drsn_jack, work)
        check_running_client(drsn_jack, fifo, model)
        check_blocked_loads(drsn_jack, blocking_open, blocking_model)
    print("drsn-jack error handling test passed")


if __name__ == "__main__":
    main()
