#!/usr/bin/env python3
"""Drive the Eclipse Paho MQTT interoperability suites (client_test.py for
MQTT 3.1.1, client_test5.py for MQTT 5.0) one test at a time.

The suites only set their connection globals (host, port, topics, ...) inside
their ``if __name__ == "__main__"`` blocks, and client_test.py hands its own
options on to unittest.main(), which rejects them.  This driver imports a
suite from SUITE_DIR without editing it, sets those globals itself and runs a
single test, so every test can get its own process and timeout.

It only ever talks to 127.0.0.1.

Usage:
  paho_driver.py --suite-dir DIR --suite client_test  --list
  paho_driver.py --suite-dir DIR --suite client_test5 --port 1883 --test test_basic

Exit status when running a test: 0 passed, 1 failed, 2 usage/import error.
Used by scripts/paho-interop.sh; no code of the suites is copied here.
"""

import argparse
import importlib
import os
import sys
import unittest

HOST = "127.0.0.1"  # never anything else
SUITES = ("client_test", "client_test5")

# The values the suites' __main__ blocks would set (client_test5.Test.setUpClass
# calls setData(), which resets topics/wildtopics to the unprefixed names).
TOPICS = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
WILDTOPICS = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")
NOSUBSCRIBE_TOPICS = ("test/nosubscribe",)
TOPIC_PREFIX = "client_test5/"  # used by client_test5.test_shared_subscriptions


def interop_dir(suite_dir):
    """Accept either the repository root or its interoperability/ folder."""
    for cand in (suite_dir, os.path.join(suite_dir, "interoperability")):
        if os.path.isfile(os.path.join(cand, "client_test.py")) and \
           os.path.isfile(os.path.join(cand, "client_test5.py")):
            return os.path.abspath(cand)
    print("paho_driver: no client_test.py/client_test5.py under %s" % suite_dir, file=sys.stderr)
    raise SystemExit(2)


def load_suite(suite_dir, suite, port):
    path = interop_dir(suite_dir)
    sys.path.insert(0, path)
    # What the suite would see on its command line; informational only, the
    # suite's option parsing never runs because __name__ != "__main__".
    sys.argv = [os.path.join(path, suite + ".py"), "--hostname", HOST, "--port", str(port)]
    mod = importlib.import_module(suite)
    mod.host = HOST
    mod.port = port
    mod.topics = TOPICS
    mod.wildtopics = WILDTOPICS
    mod.nosubscribe_topics = NOSUBSCRIBE_TOPICS
    mod.topic_prefix = TOPIC_PREFIX
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite-dir", required=True)
    ap.add_argument("--suite", required=True, choices=SUITES)
    ap.add_argument("--port", type=int, default=1883)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--list", action="store_true", help="print the suite's test names, one a line")
    g.add_argument("--test", help="run this one test (method name of class Test)")
    args = ap.parse_args()

    mod = load_suite(args.suite_dir, args.suite, args.port)
    names = unittest.TestLoader().getTestCaseNames(mod.Test)  # unittest.main's order
    if args.list:
        print("\n".join(names))
        return 0
    if args.test not in names:
        print("paho_driver: %s has no test %s (has: %s)" % (args.suite, args.test, " ".join(names)),
              file=sys.stderr)
        return 2

    print("paho_driver: %s.Test.%s against %s:%d" % (args.suite, args.test, HOST, args.port), flush=True)
    suite = unittest.TestSuite([mod.Test(args.test)])  # runs Test.setUpClass (cleanup) too
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    return 0 if result.wasSuccessful() and result.testsRun == 1 else 1


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The suites' receiver threads are plain _thread threads blocked in recv();
    # leave without waiting for them.
    os._exit(rc)
