#!/usr/bin/env python3
"""Runs the `flashline` tokenizer and chat commands on the reference vectors and on bad input.

Usage: commands_test.py FLASHLINE_BINARY DATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

BIN, DATA = sys.argv[1], sys.argv[2]
TOK = os.path.join(DATA, "tokenizer", "tokenizer.json")
failures = []


def run(args, stdin=b""):
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def check(cond, what):
    if not cond:
        failures.append(what)


def load(name):
    with open(os.path.join(DATA, "tokenizer", name), encoding="utf-8") as f:
        return json.load(f)


def write_json(tmp, name, value):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False)
    return path


def tokenizer_vectors():
    # One case per category keeps the suite fast (each run loads the 8 MB file); the library
    # test covers every case.
    seen = set()
    for c in load("vectors.json")["cases"]:
        if c["category"] in seen:
            continue
        seen.add(c["category"])
        rc, out, err = run(["tokenize", "--tokenizer", TOK], c["text"].encode("utf-8"))
        check(rc == 0 and json.loads(out) == c["ids"], f"tokenize {c['id']}: rc={rc} {err}")
        rc, out, err = run(["detokenize", "--tokenizer", TOK], json.dumps(c["ids"]).encode())
        check(rc == 0 and out == c["decoded"].encode("utf-8"), f"detokenize {c['id']}: rc={rc} {err}")


def chat_prompt_args(tmp, case):
    o = case["options"]
    args = ["chat-prompt", "--messages", write_json(tmp, "m.json", case["messages"]), "--mode", o["thinking_mode"]]
    if not o["drop_thinking"]:
        args.append("--keep-thinking")
    if not o["add_default_bos_token"]:
        args.append("--no-bos")
    if o["reasoning_effort"] is not None:
        args += ["--reasoning-effort", o["reasoning_effort"]]
    if o["context"]:
        args += ["--context", write_json(tmp, "c.json", o["context"])]
    return args


def chat_vectors(tmp):
    v = load("chat_vectors.json")
    for i, c in enumerate(v["encode_cases"]):
        args = chat_prompt_args(tmp, c)
        rc, out, err = run(args)
        if "expected_error" in c:
            check(rc == 2 and err.startswith("flashline: error:"), f"chat-prompt {c['name']}: expected an error, rc={rc}")
            continue
        check(rc == 0 and out == c["expected_prompt"].encode("utf-8"), f"chat-prompt {c['name']}: rc={rc} {err}")
        if i % 8 == 0:  # --ids loads the tokenizer: a sample is enough here
            rc, out, err = run(args + ["--ids", "--tokenizer", TOK])
            check(rc == 0 and json.loads(out) == c["expected_prompt_ids"], f"chat-prompt --ids {c['name']}: {err}")
    for c in v["parse_cases"]:
        rc, out, err = run(["chat-parse", "--mode", c["thinking_mode"]], c["completion"].encode("utf-8"))
        if "expected_error" in c:
            check(rc == 2 and err.startswith("flashline: error:"), f"chat-parse {c['name']}: expected an error, rc={rc}")
            continue
        check(rc == 0 and json.loads(out) == c["expected_message"], f"chat-parse {c['name']}: rc={rc} {err} {out!r}")


def bad_input(tmp):
    def error_mentions(args, stdin, needle, what):
        rc, out, err = run(args, stdin)
        check(rc == 2 and err.startswith("flashline: error:") and needle in err, f"{what}: rc={rc} stderr={err!r}")

    # Invalid UTF-8 is replaced by U+FFFD (maximal subparts), never rejected.
    rc, out, err = run(["tokenize", "--tokenizer", TOK], b"a\xffb\xe4\xb8")
    rc2, out2, _ = run(["tokenize", "--tokenizer", TOK], "a\ufffdb\ufffd".encode())
    check(rc == 0 and out == out2, f"tokenize invalid UTF-8: rc={rc} {err}")
    error_mentions(["detokenize", "--tokenizer", TOK], b"[1, 999999]", "999999", "detokenize unknown id")
    error_mentions(["detokenize", "--tokenizer", TOK], b"[1, \"x\"]", "[1]", "detokenize non-integer")
    error_mentions(["detokenize", "--tokenizer", TOK], b"[1,", "not valid JSON", "detokenize bad JSON")
    error_mentions(["tokenize", "--tokenizer", os.path.join(tmp, "none.json")], b"x", "none.json", "missing tokenizer")
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('[{"role": "user", "content": "hi"},')
    error_mentions(["chat-prompt", "--messages", bad], b"", "bad.json", "malformed messages JSON")
    m = write_json(tmp, "role.json", [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
    error_mentions(["chat-prompt", "--messages", m], b"", "messages[1].role", "unknown role")
    m = write_json(tmp, "content.json", [{"role": "user", "content": 5}])
    error_mentions(["chat-prompt", "--messages", m], b"", "messages[0].content", "non-string content")
    m = write_json(tmp, "args.json", [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]}])
    error_mentions(["chat-prompt", "--messages", m], b"", "messages[1].tool_calls[0].function.arguments",
                   "non-object arguments")
    m = write_json(tmp, "args2.json", [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}])
    error_mentions(["chat-prompt", "--messages", m], b"", "messages[1].tool_calls[0].function.arguments",
                   "arguments not a string")
    error_mentions(["chat-parse"], b"no end", "missing EOS", "chat-parse missing EOS")
    rc, out, err = run(["chat-parse"], b"a\xff<\xef\xbd\x9cend\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>")
    check(rc == 0 and json.loads(out)["content"] == "a\ufffd", f"chat-parse invalid UTF-8: {err}")
    for cmd in ["tokenize", "detokenize", "chat-prompt", "chat-parse"]:
        rc, out, err = run([cmd, "--help"])
        check(rc == 0 and b"Usage" in out, f"{cmd} --help")


with tempfile.TemporaryDirectory() as tmp:
    tokenizer_vectors()
    chat_vectors(tmp)
    bad_input(tmp)

for f in failures:
    print("FAIL:", f)
print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
