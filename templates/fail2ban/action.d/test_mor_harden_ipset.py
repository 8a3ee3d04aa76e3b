# Unit tests of mor-harden's ban action (mor-harden-ipset.py beside this file), without root and
# without fail2ban-server: as fail2ban tests its own actions (fail2ban/tests/action_d/test_smtp.py),
# the action is built on a stand-in jail (fail2ban's DummyJail, fail2ban/tests/dummyjail.py, with
# a polling filter for ignoreip and, where a test says so, a real fail2ban database in a temporary
# file), and its commands go to FakeHost, a stand-in ipset and iptables that keeps sets and INPUT
# rules in memory and refuses what the real ones refuse (a set made again with other options, a
# full set, a set destroyed while a rule matches it, an address of the other family).
# Run with fail2ban's Python: `python3 -m unittest test_mor_harden_ipset` here, or
# test/fail2ban/ban-action-unit.test.ts (npm test, npm run test:unit).
import importlib.util
import logging
import os
import shutil
import tempfile
import time
import unittest

from fail2ban.server.database import Fail2BanDb
from fail2ban.server.ticket import BanTicket
from fail2ban.tests.dummyjail import DummyJail

# The action's warnings are asserted where they matter (assertLogs), not printed.
logging.getLogger("fail2ban").addHandler(logging.NullHandler())

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("mor_harden_ipset", os.path.join(HERE, "mor-harden-ipset.py"))
action_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(action_module)


class Refused(Exception):
    pass


class FakeHost:
    """ipset and iptables/ip6tables in memory, as the action calls them (its execute())."""

    def __init__(self):
        # name -> {"family", "maxelem", "timeout", "members": {address: timeout or None}}
        self.sets = {}
        # tool -> INPUT's rules, each a tuple of its arguments
        self.rules = {"iptables": [], "ip6tables": []}
        self.commands = []

    def execute(self, argv, stdin=None):
        self.commands.append(argv)
        try:
            if argv[0] == "ipset":
                self._ipset([word for word in argv[1:] if word not in ("-exist", "-q")], stdin)
            else:
                self._iptables(argv[0], argv[1:])
            return Result(0, "")
        except Refused as refusal:
            return Result(1, str(refusal))

    def _set(self, name):
        if name not in self.sets:
            raise Refused("The set with the given name does not exist")
        return self.sets[name]

    def _add(self, name, address, timeout=None):
        members = self._set(name)
        if (":" in address) != (members["family"] == "inet6"):
            raise Refused("Syntax error: cannot parse %s: resolving to IPv4 address failed" % address)
        if address not in members["members"] and len(members["members"]) >= members["maxelem"]:
            raise Refused("Hash is full, cannot add more elements")
        members["members"][address] = timeout

    def _ipset(self, words, stdin):
        command = words[0]
        if command == "create":
            name, options = words[1], dict(zip(words[3::2], words[4::2]))
            wanted = {"family": options["family"], "maxelem": int(options["maxelem"]), "timeout": int(options.get("timeout", 0))}
            if name in self.sets:
                if {key: self.sets[name][key] for key in wanted} != wanted:
                    raise Refused("Set cannot be created: set with the same name already exists")
                return
            self.sets[name] = dict(wanted, members={})
        elif command == "destroy":
            self._set(words[1])
            if any(words[1] in rule for rules in self.rules.values() for rule in rules):
                raise Refused("Set cannot be destroyed: it is in use by a kernel component")
            del self.sets[words[1]]
        elif command == "list":
            self._set(words[-1])
        elif command == "flush":
            self._set(words[1])["members"].clear()
        elif command == "add":
            self._add(words[1], words[2])
        elif command == "del":
            self._set(words[1])["members"].pop(words[2], None)
        elif command == "restore":
            # ipset restore stops at the first line it refuses.
            for number, line in enumerate(stdin.splitlines(), 1):
                parts = line.split()
                try:
                    if parts[0] == "add":
                        self._add(parts[1], parts[2], int(parts[4]) if len(parts) > 4 else None)
                    elif parts[0] == "del":
                        self._set(parts[1])["members"].pop(parts[2], None)
                    else:
                        raise Refused("unknown command %s" % parts[0])
                except Refused as refusal:
                    raise Refused("Error in line %d: %s" % (number, refusal))
        else:
            raise Refused("unknown command %s" % command)

    def _iptables(self, tool, words):
        assert words[0] == "-w", words
        operation, chain = words[1], words[2]
        assert chain == "INPUT", words
        rules = self.rules[tool]
        if operation == "-C":
            rule = tuple(words[3:])
            if rule not in rules:
                raise Refused("Bad rule (does a matching rule exist in that chain?).")
        elif operation == "-I":
            rules.insert(int(words[3]) - 1, tuple(words[4:]))
        elif operation == "-D":
            rule = tuple(words[3:])
            if rule not in rules:
                raise Refused("Bad rule (does a matching rule exist in that chain?).")
            rules.remove(rule)
        else:
            raise Refused("unknown operation %s" % operation)

    def members(self, name):
        return sorted(self.sets[name]["members"]) if name in self.sets else None

    def matched(self, name, tool="iptables"):
        return sum(1 for rule in self.rules[tool] if name in rule)


class Result:
    def __init__(self, returncode, stderr):
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = ""


class ActionTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="morh-ban-action-unit-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.host = FakeHost()
        execute = action_module.execute
        action_module.execute = self.host.execute
        self.addCleanup(setattr, action_module, "execute", execute)
        self.jail = DummyJail(name="t", backend="polling")
        self.jail.filter.ignoreSelf = False
        self.now = int(time.time())

    def action(self, **options):
        options = dict({"settimeout": "0", "set": "morh-ban-t", "otherset": "morh-ban-t-t", "journaldir": self.dir}, **options)
        return action_module.Action(self.jail, "mor-harden-ipset", **options)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as written:
            written.write(text)

    def read(self, name):
        with open(self.path(name)) as read:
            return read.read()

    def database(self, *addresses):
        """A real fail2ban database (a temporary file) holding permanent bans of `addresses`."""
        database = Fail2BanDb(self.path("f2b.sqlite3"))
        database.addJail(self.jail)
        for address in addresses:
            ticket = BanTicket(address, self.now)
            ticket.setBanTime(-1)
            database.addBan(self.jail, ticket)
        self.jail.database = database
        return database

    def ban(self, action, address, bantime=-1, restored=False):
        action.ban({"ip": address, "bantime": bantime, "time": self.now, "restored": restored})

    def queued(self):
        return sorted(str(ticket.getID()) for ticket in self.jail.queue)


class JournalTest(ActionTestCase):
    def test_write_then_read_gives_the_same_bans_and_leaves_no_temporary_file(self):
        ends = {"192.0.2.1": 0, "2001:db8::1": self.now + 60}
        action_module.write_journal(self.path("t.bans"), ends)
        self.assertEqual(action_module.read_journal(self.path("t.bans")), ends)
        self.assertEqual(sorted(os.listdir(self.dir)), ["t.bans"])

    def test_read_applies_unbans_and_skips_torn_and_bad_lines(self):
        self.write("t.bans", "0 192.0.2.1\n0 192.0.2.2\n- 192.0.2.1\n0 192.0.2.3 extra\nx 192.0.2.4\n0 0.0.0.0\n0 ::\n\0\0\0\0\n0 192.0.2.5\n5 192.0.2.")
        self.assertEqual(action_module.read_journal(self.path("t.bans")), {"192.0.2.2": 0, "192.0.2.5": 0})

    def test_read_of_a_missing_journal_is_empty(self):
        self.assertEqual(action_module.read_journal(self.path("none.bans")), {})

    def test_ban_and_unban_append_lines_and_change_the_set(self):
        action = self.action()
        action.start()
        self.ban(action, "192.0.2.1")
        self.ban(action, "2001:db8::1", bantime=600)
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1"])
        self.assertEqual(self.host.members("morh-ban-t-6"), ["2001:db8::1"])
        action.unban({"ip": "192.0.2.1"})
        self.assertEqual(self.host.members("morh-ban-t-4"), [])
        self.assertEqual(self.read("t.bans"), "0 192.0.2.1\n%d 2001:db8::1\n- 192.0.2.1\n" % (self.now + 600))

    def test_a_line_after_a_torn_one_goes_on_a_line_of_its_own(self):
        self.database("192.0.2.1")
        self.write("t.bans", "0 192.0.2.1\n0 192.0.2.")
        action = self.action()
        action.start()
        # start() rewrote the journal whole; tear it again, as a full disk would while running.
        with open(self.path("t.bans"), "a") as journal:
            journal.write("0 192.0.2.")
        self.ban(action, "192.0.2.2")
        self.assertEqual(self.read("t.bans"), "0 192.0.2.1\n0 192.0.2.\n0 192.0.2.2\n")
        self.assertEqual(sorted(action_module.read_journal(self.path("t.bans"))), ["192.0.2.1", "192.0.2.2"])

    def test_compacts_once_dead_lines_outnumber_live_ones_keeping_lines_others_appended(self):
        action = self.action(compactlines="6")
        action.start()
        self.ban(action, "192.0.2.1")
        for _ in range(2):
            self.ban(action, "192.0.2.2")
            action.unban({"ip": "192.0.2.2"})
        # carry-over-bans.sh appends to the journal too: compaction reads the file.
        with open(self.path("t.bans"), "a") as journal:
            journal.write("0 192.0.2.9\n")
        self.assertEqual(len(self.read("t.bans").splitlines()), 6)
        self.ban(action, "192.0.2.3")
        self.assertEqual(sorted(self.read("t.bans").splitlines()), ["0 192.0.2.1", "0 192.0.2.3", "0 192.0.2.9"])
        self.assertEqual((action.lines, action.live), (3, 3))

    def test_does_not_compact_while_live_bans_are_the_most(self):
        action = self.action(compactlines="3")
        action.start()
        for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            self.ban(action, address)
        action.unban({"ip": "192.0.2.1"})
        self.assertEqual(len(self.read("t.bans").splitlines()), 4)


class StartTest(ActionTestCase):
    def test_loads_the_journal_in_one_restore_and_matches_the_sets_once(self):
        self.database("192.0.2.1", "192.0.2.3", "2001:db8::1")
        self.write("t.bans", "0 192.0.2.1\n%d 192.0.2.2\n0 192.0.2.3\n0 2001:db8::1\n" % (self.now - 1))
        action = self.action()
        action.start()
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1", "192.0.2.3"], "the expired ban is not loaded")
        self.assertEqual(self.host.members("morh-ban-t-6"), ["2001:db8::1"])
        self.assertEqual([argv[:2] for argv in self.host.commands if "add" in argv], [], "no ipset add a ban")
        action.stop()
        action.start()
        self.assertEqual((self.host.matched("morh-ban-t-4"), self.host.matched("morh-ban-t-6", "ip6tables")), (1, 1))
        self.assertEqual(sorted(self.read("t.bans").splitlines()), ["0 192.0.2.1", "0 192.0.2.3", "0 2001:db8::1"])

    def test_a_timed_set_gets_each_ban_its_time_left(self):
        self.database("192.0.2.1")
        self.write("t.bans", "%d 192.0.2.1\n" % (self.now + 100))
        self.action(settimeout="600", set="morh-ban-t-t", otherset="morh-ban-t").start()
        members = self.host.sets["morh-ban-t-t-4"]["members"]
        self.assertEqual(list(members), ["192.0.2.1"])
        self.assertTrue(0 < members["192.0.2.1"] <= 100, members)

    def test_a_restored_ban_it_loaded_costs_no_command_and_one_it_did_not_is_banned(self):
        self.database("192.0.2.1", "192.0.2.2")
        self.write("t.bans", "0 192.0.2.1\n")
        action = self.action()
        action.start()
        before = len(self.host.commands)
        self.ban(action, "192.0.2.1", restored=True)
        self.assertEqual(len(self.host.commands), before)
        self.ban(action, "192.0.2.2", restored=True)
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1", "192.0.2.2"])

    def test_does_not_load_an_address_the_jail_ignores_now(self):
        self.database("192.0.2.1", "192.0.2.5")
        self.jail.filter.addIgnoreIP("192.0.2.0/29")
        self.write("t.bans", "0 192.0.2.1\n0 192.0.2.5\n0 192.0.2.9\n")
        self.action().start()
        self.assertEqual(self.host.members("morh-ban-t-4"), [])

    def test_a_set_left_with_other_options_is_made_again_and_loaded(self):
        self.database("192.0.2.1")
        self.write("t.bans", "0 192.0.2.1\n")
        self.host.execute(["ipset", "create", "morh-ban-t-4", "hash:ip", "family", "inet", "maxelem", "10"])
        self.host.execute(["iptables", "-w", "-I", "INPUT", "1"] + action_module.rule("morh-ban-t", "4"))
        self.action().start()
        self.assertEqual(self.host.sets["morh-ban-t-4"]["maxelem"], 1048576)
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1"])
        self.assertEqual(self.host.matched("morh-ban-t-4"), 1)

    def test_reload_to_a_timed_ban_time_moves_the_bans_to_the_timed_set(self):
        self.database("192.0.2.1")
        action = self.action()
        action.start()
        self.ban(action, "192.0.2.1")
        action.reload(settimeout="600", set="morh-ban-t-t", otherset="morh-ban-t", journaldir=self.dir)
        self.assertNotIn("morh-ban-t-4", self.host.sets)
        self.assertEqual(self.host.matched("morh-ban-t-4"), 0)
        self.assertEqual(self.host.members("morh-ban-t-t-4"), ["192.0.2.1"])
        self.assertEqual(self.host.matched("morh-ban-t-t-4"), 1)

    def test_a_set_destroyed_by_hand_is_made_again_at_the_next_ban(self):
        self.database("192.0.2.1")
        action = self.action()
        action.start()
        self.ban(action, "192.0.2.1")
        self.host.rules["iptables"].clear()
        del self.host.sets["morh-ban-t-4"]
        self.ban(action, "192.0.2.2")
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1", "192.0.2.2"])
        self.assertEqual(self.host.matched("morh-ban-t-4"), 1)

    def test_flush_then_stop_keeps_the_journal_for_the_next_start(self):
        action = self.action()
        action.start()
        self.ban(action, "192.0.2.1")
        action.flush()
        self.assertEqual(self.host.members("morh-ban-t-4"), [])
        self.assertFalse(os.path.exists(self.path("t.bans")))
        action.stop()
        self.assertEqual(self.read("t.bans"), "0 192.0.2.1\n")
        self.assertNotIn("morh-ban-t-4", self.host.sets)
        self.assertEqual(self.host.rules, {"iptables": [], "ip6tables": []})


class ReconcileTest(ActionTestCase):
    def test_removes_the_bans_fail2ban_does_not_hold_and_lists_them(self):
        self.database("192.0.2.1")
        self.write("t.bans", "0 192.0.2.1\n0 192.0.2.2\n0 2001:db8::2\n")
        with self.assertLogs("fail2ban.Action", "WARNING") as logs:
            self.action().start()
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1"])
        self.assertEqual(self.host.members("morh-ban-t-6"), [])
        self.assertEqual(self.read("t.bans"), "0 192.0.2.1\n")
        self.assertEqual(self.read("t.dropped"), "192.0.2.2\n2001:db8::2\n")
        self.assertIn("2 ban(s) of the journal fail2ban does not hold removed", logs.output[0])

    def test_holds_what_fail2ban_bans_now_though_not_in_its_database(self):
        self.database()
        self.jail.actions.addBannedIP("192.0.2.7")
        self.write("t.bans", "0 192.0.2.7\n")
        action = self.action()
        action.start()
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.7"])

    def test_without_a_database_drops_every_ban_fail2ban_does_not_list(self):
        self.write("t.bans", "0 192.0.2.1\n")
        with self.assertLogs("fail2ban.Action", "WARNING"):
            self.action().start()
        self.assertEqual(self.host.members("morh-ban-t-4"), [])
        self.assertEqual(self.read("t.bans"), "")

    def test_keeps_every_ban_and_logs_why_when_fail2ban_cannot_be_asked(self):
        self.write("t.bans", "0 192.0.2.1\n0 192.0.2.2\n")

        def broken():
            raise RuntimeError("database is locked")

        self.jail.actions.getBanList = broken
        with self.assertLogs("fail2ban.Action", "ERROR") as logs:
            self.action().start()
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1", "192.0.2.2"])
        self.assertIn("not compared with fail2ban's (database is locked): all 2 loaded kept", logs.output[0])


class CarriedOverTest(ActionTestCase):
    def test_hands_the_carried_over_bans_fail2ban_does_not_hold_to_the_jail(self):
        self.database("192.0.2.1")
        # carry-over-bans.sh journals them and lists them in JAIL.carried.
        self.write("t.bans", "0 192.0.2.1\n0 192.0.2.2\n0 192.0.2.3\n")
        self.write("t.carried", "192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.5\nnot-an-address\n0.0.0.0\n")
        self.jail.filter.addIgnoreIP("192.0.2.5")
        action = self.action()
        action.start()
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1", "192.0.2.2", "192.0.2.3"], "carried-over bans stay loaded")
        self.assertEqual(self.queued(), ["192.0.2.2", "192.0.2.3"], "those fail2ban holds and the ignored one are not queued")
        self.assertEqual(self.read("t.carried"), "192.0.2.2\n192.0.2.3\n")
        # fail2ban bans the queued one: already in the set, no command for it.
        before = len(self.host.commands)
        self.ban(action, "192.0.2.2")
        self.assertEqual(len(self.host.commands), before)
        # Stopped before the ban reached the database, and before 192.0.2.3 left the queue: both kept.
        action.stop()
        self.assertEqual(sorted(self.read("t.carried").splitlines()), ["192.0.2.2", "192.0.2.3"])

    def test_a_restart_with_the_carried_bans_in_the_database_removes_the_list(self):
        self.database("192.0.2.2")
        self.write("t.bans", "0 192.0.2.2\n")
        self.write("t.carried", "192.0.2.2\n")
        action = self.action()
        action.start()
        self.assertEqual(self.queued(), [])
        self.assertFalse(os.path.exists(self.path("t.carried")))

    def test_an_unbanned_carried_ban_is_not_handed_over_again(self):
        self.database()
        self.write("t.bans", "0 192.0.2.2\n")
        self.write("t.carried", "192.0.2.2\n")
        action = self.action()
        action.start()
        action.unban({"ip": "192.0.2.2"})
        action.stop()
        self.assertFalse(os.path.exists(self.path("t.carried")))


class MaxelemTest(ActionTestCase):
    def test_a_full_set_refuses_a_ban_which_is_logged_not_journaled_and_not_retried_by_a_start(self):
        action = self.action(maxelem="2")
        action.start()
        self.ban(action, "192.0.2.1")
        self.ban(action, "192.0.2.2")
        creates = sum(1 for argv in self.host.commands if "create" in argv)
        with self.assertLogs("fail2ban.Action", "ERROR") as logs:
            self.ban(action, "192.0.2.3")
        self.assertIn("192.0.2.3 is not banned: morh-ban-t-4 refused it (Hash is full", logs.output[0])
        self.assertEqual(sum(1 for argv in self.host.commands if "create" in argv), creates, "no start() for a full set")
        self.assertNotIn("192.0.2.3", self.read("t.bans"))
        self.assertEqual(self.host.members("morh-ban-t-4"), ["192.0.2.1", "192.0.2.2"])


if __name__ == "__main__":
    unittest.main()
