# Managed by mor-harden. Do not edit: drift checks report every change.
#
# A plain Python file, installed as it is: its settings are the jail's action options
# (`action = mor-harden-ipset.py[settimeout=..., set=..., otherset=..., journaldir=...]`), which
# fail2ban passes to Action.__init__ as keyword arguments, and to reload() at a reload
# (fail2ban/server/actions.py, Actions.add and Actions.reload). Unit tests beside it
# (test_mor_harden_ipset.py) run it with a stand-in jail and a stand-in ipset and iptables.
#
# mor-harden's ban action: bans in ipsets, all ports, IPv4 and IPv6. One set per jail and family,
# matched by one rule first in INPUT, so a packet costs the same with 10 bans or 100,000 (a chain
# of one rule a ban makes every packet walk all of them). Set names: <set>-4 and <set>-6, where
# <set> is morh-ban-JAIL for permanent jails (sets without timeout) and morh-ban-JAIL-t for timed
# jails (sets with the jail's ban time as timeout); jail.d/mor-harden.local passes them.
#
# Restarts. fail2ban restores the bans in its database one action call a ban; a command action
# runs one command each (fail2ban#3088: hours for tens of thousands). This is a Python action:
# a restored ban costs no command, because start() has already loaded the sets in one
# `ipset restore` from the jail's ban journal. The journal holds what ban() and unban() did
# ("END ADDRESS" a ban, END 0 = permanent; "- ADDRESS" an unban), which is what fail2ban's database
# holds: a ban reaches the database only through ban() (restored ones are already there), and every
# unban (fail2ban-client, expiry) calls unban(), restored bans included. flush() empties the sets
# and moves the journal aside: on a stop, stop() puts it back (the bans stay in the database and
# come back at the next start); after `unban --all` (database emptied too) it stays empty.
# (A command action cannot do this: fail2ban skips its unban of restored bans it did not run.)
# Where the two part (the database deleted or in memory, a ban lifted from it while fail2ban was
# down, a journal line lost), fail2ban decides: after loading, start() removes the bans fail2ban
# does not hold (its ban list and the database's bans it restores), which nothing could lift
# through fail2ban; a ban fail2ban restores that start() did not load is banned by ban().
# Bans carried over from before the switch to this action (carry-over-bans.sh: MOR's chains,
# fail2ban's list) are journaled and listed in JAIL.carried: start() hands those fail2ban does not
# hold to the jail as new bans, so fail2ban holds them (and can lift them) as it holds its own.
import ipaddress
import os
import socket
import subprocess
import threading
import time

from fail2ban.server.action import ActionBase
from fail2ban.server.ticket import FailTicket

# Where each jail's ban journal is kept (the action's journaldir option can set another).
JOURNAL_DIR = "/var/lib/mor-harden/fail2ban"
# ipset's default, 65536, is too few for MOR's permanent jails (the action's maxelem option can
# set another).
MAXELEM = "1048576"
# The journal is written anew (its live bans only) once it has at least this many lines and more
# of them dead (unbanned, superseded) than live: a jail with timed bans adds two lines a ban, and
# its journal would grow without bound between starts (the action's compactlines option can set
# another). Each rewrite reads and writes the live bans, and comes after at least as many lines
# written since the last one: a constant cost a line.
COMPACT_LINES = "10000"
FAMILIES = {
    "4": {"inet": "inet", "iptables": "iptables", "reject": "icmp-port-unreachable"},
    "6": {"inet": "inet6", "iptables": "ip6tables", "reject": "icmp6-port-unreachable"},
}


def execute(argv, stdin=None):
    """Runs a command (ipset, iptables), its output captured: the one place commands run (the unit
    tests put a stand-in here)."""
    return subprocess.run(argv, input=stdin, capture_output=True, text=True)


def run(argv, stdin=None, check=True):
    result = execute(argv, stdin)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), result.returncode, result.stderr.strip()))
    return result.returncode == 0


def family_of(address):
    return "6" if ":" in address else "4"


def rule(set_name, family):
    return ["-m", "set", "--match-set", "%s-%s" % (set_name, family), "src", "-j", "REJECT", "--reject-with", FAMILIES[family]["reject"]]


def address_value(address):
    """(version, integer) of an address, or None."""
    try:
        if ":" in address:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
    except (OSError, ValueError):
        return None


def read_journal(path):
    """Address -> end of its ban (0: permanent), the journal's lines applied in order. A line that
    is not one (torn by a crash or a full disk, zeros after a power loss) is skipped: one bad line
    must not keep the jail's sets from loading."""
    ends = {}
    try:
        with open(path, errors="replace") as journal:
            for line in journal:
                words = line.split()
                if len(words) != 2:
                    continue
                try:
                    # 0.0.0.0 and :: (carried over from a chain): ipset refuses them, and its
                    # restore stops at the first line it refuses, leaving the rest unloaded.
                    if ipaddress.ip_address(words[1]).is_unspecified:
                        continue
                    end = None if words[0] == "-" else int(words[0])
                except ValueError:
                    continue
                if end is None:
                    ends.pop(words[1], None)
                else:
                    ends[words[1]] = end
    except FileNotFoundError:
        pass
    return ends


def write_journal(path, ends):
    """Writes the journal anew with `ends` (address -> end): a new file, synced, renamed over the old
    one (and the rename synced), so that a crash or a power loss leaves the old journal or the new
    one, whole."""
    new = path + ".new"
    try:
        with open(new, "w") as journal:
            journal.writelines("%d %s\n" % (end, address) for address, end in ends.items())
            journal.flush()
            os.fsync(journal.fileno())
        os.replace(new, path)
    except BaseException:
        if os.path.exists(new):
            os.remove(new)
        raise
    directory = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_addresses(path):
    """The addresses of a file of one a line (what carry-over-bans.sh carried), bad lines skipped."""
    addresses = []
    try:
        with open(path, errors="replace") as listed:
            for line in listed:
                value = address_value(line.strip())
                # 0.0.0.0 and :: are no bans ipset can hold (read_journal()).
                if value is not None and value[1] != 0:
                    addresses.append(line.strip())
    except FileNotFoundError:
        pass
    return addresses


class Action(ActionBase):
    def __init__(self, jail, name, settimeout="0", set=None, otherset=None, maxelem=MAXELEM, compactlines=COMPACT_LINES, journaldir=JOURNAL_DIR):
        super(Action, self).__init__(jail, name)
        self.timeout = int(settimeout)
        self.set = set
        self.other = otherset
        self.maxelem = str(int(maxelem))
        self.compactlines = int(compactlines)
        # The journal's lines and how many of them are live bans, as ban() and unban() count them
        # (a reban counts as one more): when to compact it (each compaction counts them again).
        self.lines = 0
        self.live = 0
        self._journal_dir(journaldir)
        # The carried-over addresses handed to the jail and not banned by it yet (in its queue), and
        # those it banned since: JAIL.carried keeps both until a start finds them in fail2ban's
        # database, so that a stop before (the queue is dropped; fail2ban writes a ban to its
        # database after the actions' ban, from another thread) does not lose them. Dicts (the
        # `set` option shadows the built-in here), in the order they were carried.
        self.pending = {}
        self.taken = {}
        # Whether this instance handed bans over (it alone may rewrite or remove JAIL.carried at a
        # stop: fail2ban stops replaced instances too, which never saw the file).
        self.handed_over = False
        # The addresses start() loaded: a restored ban not among them is banned by ban() itself.
        self.loaded = frozenset()
        # ban() and unban() run in the jail's thread and in the server's (fail2ban-client set ... banip).
        self.lock = threading.RLock()

    def _journal_dir(self, journaldir):
        self.journals = journaldir
        self.journal = os.path.join(journaldir, "%s.bans" % self._jail.name)
        self.carried = os.path.join(journaldir, "%s.carried" % self._jail.name)

    def clearAllParams(self):
        # With this method, `fail2ban-client reload` keeps this action and calls reload() with the
        # new options; without it, fail2ban replaces the action and then stops the replacement as
        # obsolete (flush, stop): the jail is left with no action and its sets gone.
        pass

    def _ignored(self):
        """What the jail ignores now, as a test of an address: fail2ban's own test when an
        ignorecommand decides, else the ranges of ignoreip (and, with ignoreself, the host's own
        addresses) compared as integers: a journal of 100,000 bans is checked in well under a second."""
        jail_filter = self._jail.filter
        if getattr(jail_filter, "ignoreCommand", None):
            return lambda address: jail_filter.inIgnoreIPList(address, log_ignore=False)
        entries = [str(ip) for ip in jail_filter.getIgnoreIP()]
        if getattr(jail_filter, "ignoreSelf", False):
            from fail2ban.server.ipdns import DNSUtils
            entries += [str(ip) for ip in DNSUtils.getSelfIPs()]
        ranges = []
        for entry in entries:
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                # A host name: fail2ban's own test resolves it.
                return lambda address: jail_filter.inIgnoreIPList(address, log_ignore=False)
            ranges.append((net.version, int(net.network_address), int(net.broadcast_address)))

        def ignored(address):
            value = address_value(address)
            return value is not None and any(version == value[0] and first <= value[1] <= last for version, first, last in ranges)

        return ignored

    def _remove_rules(self, set_name, family):
        tool = FAMILIES[family]["iptables"]
        while run([tool, "-w", "-D", "INPUT"] + rule(set_name, family), check=False):
            pass

    def start(self):
        with self.lock:
            self._start()

    def _start(self):
        os.makedirs(self.journals, exist_ok=True)
        for family, names in FAMILIES.items():
            create = ["ipset", "-exist", "create", "%s-%s" % (self.set, family), "hash:ip", "family", names["inet"], "maxelem", self.maxelem]
            create += ["timeout", str(self.timeout)] if self.timeout else []
            if not run(create, check=False):
                # The set exists with other options (another ban time, left by a fail2ban that did
                # not stop): made again, its bans come back from the journal below.
                self._remove_rules(self.set, family)
                run(["ipset", "destroy", "%s-%s" % (self.set, family)])
                run(create)
            # The jail's ban time changed kind (timed, permanent): the other set goes, its bans
            # come back from the journal into this one.
            if run(["ipset", "-q", "list", "-n", "%s-%s" % (self.other, family)], check=False):
                self._remove_rules(self.other, family)
                run(["ipset", "destroy", "%s-%s" % (self.other, family)])
        now = int(time.time())
        kept = {address: end for address, end in read_journal(self.journal).items() if end == 0 or end > now}
        # An address put in ignoreip since its ban: fail2ban does not restore that ban (nor can it
        # unban it), so it must not be loaded either.
        is_ignored = self._ignored()
        ignored = [address for address in kept if is_ignored(address)]
        for address in ignored:
            del kept[address]
        carried = [address for address in read_addresses(self.carried) if not is_ignored(address)]
        lines = []
        for address, end in kept.items():
            left = end - now
            option = " timeout %d" % left if self.timeout and end and left < self.timeout else ""
            lines.append("add %s-%s %s%s\n" % (self.set, family_of(address), address, option))
        try:
            run(["ipset", "restore", "-exist"], stdin="".join(lines))
            self.loaded = frozenset(kept)
        finally:
            # Whatever the journal held, the sets are matched: bans made from now on work.
            for family, names in FAMILIES.items():
                if not run([names["iptables"], "-w", "-C", "INPUT"] + rule(self.set, family), check=False):
                    run([names["iptables"], "-w", "-I", "INPUT", "1"] + rule(self.set, family))
        # Loaded first, compared after: the bans are enforced at once, and whatever goes wrong in
        # the comparison leaves them so.
        held = self._reconcile(kept, carried)
        write_journal(self.journal, kept)
        self.lines = self.live = len(kept)
        self._hand_over(carried, held)

    def _held(self):
        """The addresses fail2ban holds for the jail, as address_value()s: its ban list, and the bans
        of its database it restores at a start (Jail.restoreCurrentBans' query; those it has not
        restored yet are still in its queue while start() runs)."""
        jail = self._jail
        held = [str(address) for address in jail.actions.getBanList()]
        database = jail.database
        if database is not None:
            if jail.getBanTimeExtra("increment"):
                forbantime, correct = None, jail.getMaxBanTime()
            else:
                forbantime, correct = jail.actions.getBanTime(), True
            held += [str(ticket.getID()) for ticket in database.getCurrentBans(jail=jail, forbantime=forbantime, correctBanTime=correct, maxmatches=0)]
        return set(address_value(address) for address in held)

    def _reconcile(self, kept, carried):
        """Removes from the sets and from `kept` the bans fail2ban does not hold: the journal keeps
        what the database lost (deleted, in memory, a ban lifted while fail2ban was down), and such
        a ban could be lifted through fail2ban never (`unban` says it is not banned). Those carried
        over stay: _hand_over() gives them to fail2ban. Returns what fail2ban holds, or None when
        that could not be read: then every ban stays (one too many rather than one lost)."""
        try:
            held = self._held()
        except Exception as error:
            self._logSys.error("%s-4/-6: bans not compared with fail2ban's (%s): all %d loaded kept", self.set, error, len(kept))
            return None
        wanted = held | set(address_value(address) for address in carried)
        stale = [address for address in kept if address_value(address) not in wanted]
        if not stale:
            return held
        try:
            run(["ipset", "restore", "-exist"], stdin="".join("del %s-%s %s\n" % (self.set, family_of(address), address) for address in stale))
        except Exception as error:
            self._logSys.error("%s-4/-6: %d ban(s) fail2ban does not hold left in the sets: %s", self.set, len(stale), error)
            return held
        for address in stale:
            del kept[address]
        self.loaded = frozenset(kept)
        # All of them in a file (the last start's), for an operator who wants them back through
        # fail2ban (`xargs fail2ban-client set JAIL banip < JAIL.dropped`); the log names ten.
        dropped = os.path.join(self.journals, "%s.dropped" % self._jail.name)
        try:
            with open(dropped, "w") as listing:
                listing.writelines("%s\n" % address for address in stale)
        except OSError as error:
            self._logSys.error("%s not written: %s", dropped, error)
        self._logSys.warning(
            "%s-4/-6: %d ban(s) of the journal fail2ban does not hold removed (its database lost them; all in %s): %s%s",
            self.set, len(stale), dropped, " ".join(stale[:10]), " ..." if len(stale) > 10 else "",
        )
        return held

    def _hand_over(self, carried, held):
        """Bans carried over from before the switch (MOR's chains) become bans of the jail: queued
        as tickets, as its filter queues them, fail2ban bans them (ban() below), writes them to its
        database and can lift them. Those it holds already (`held`; None: not known) are left to it.
        JAIL.carried keeps those its database does not hold yet: the queue is lost at a stop and
        a ban reaches the database after ban(), from another thread (stop() writes back those not
        lifted since; the next start hands over again those its database does not hold)."""
        now = time.time()
        # Not known: queued anyway (one fail2ban holds is only logged as already banned).
        waiting = [address for address in carried if held is None or address_value(address) not in held]
        for address in waiting:
            # Already queued by this action (a reload, a set made again): not queued twice.
            if address not in self.pending and address not in self.taken:
                self._jail.putFailTicket(FailTicket(address, now))
        self.pending = dict.fromkeys(address for address in waiting if address not in self.taken)
        self.handed_over = self.handed_over or bool(carried)
        self._write_carried()

    def _write_carried(self):
        listed = list(self.pending)
        database = self._jail.database
        if database is not None and getattr(database, "filename", None) != ":memory:":
            # Banned, but perhaps not yet in the database: the next start looks.
            listed += list(self.taken)
        if listed:
            new = self.carried + ".new"
            with open(new, "w") as listing:
                listing.writelines("%s\n" % address for address in listed)
                listing.flush()
                os.fsync(listing.fileno())
            os.replace(new, self.carried)
        elif os.path.exists(self.carried):
            os.remove(self.carried)

    def reload(self, settimeout="0", set=None, otherset=None, maxelem=MAXELEM, compactlines=COMPACT_LINES, journaldir=JOURNAL_DIR):
        # `fail2ban-client reload`: the jail's options as they are now (its ban time may have changed
        # kind, timed or permanent: start() then moves the bans to the other set).
        with self.lock:
            if set is not None and set != self.set:
                # The set of the old kind: start() removes it as the other one.
                otherset = self.set
            self.timeout = int(settimeout)
            self.maxelem = str(int(maxelem))
            self.compactlines = int(compactlines)
            self._journal_dir(journaldir)
            self.set = set if set is not None else self.set
            self.other = otherset if otherset is not None else self.other
            self._start()

    def flush(self):
        with self.lock:
            for family in FAMILIES:
                run(["ipset", "flush", "%s-%s" % (self.set, family)], check=False)
            flushed = self.journal + ".flushed"
            if os.path.exists(self.journal):
                os.replace(self.journal, flushed)
            else:
                open(flushed, "w").close()
            self.lines = self.live = 0
            return True

    def stop(self):
        with self.lock:
            for family in FAMILIES:
                self._remove_rules(self.set, family)
                run(["ipset", "-q", "destroy", "%s-%s" % (self.set, family)], check=False)
            flushed = self.journal + ".flushed"
            if os.path.exists(flushed):
                if os.path.exists(self.journal):
                    with open(self.journal) as since, open(flushed, "a") as journal:
                        journal.write(since.read())
                os.replace(flushed, self.journal)
            # The carried-over bans still in the jail's queue, dropped with it: handed over again
            # at the next start.
            if self.handed_over:
                try:
                    self._write_carried()
                except OSError as error:
                    self._logSys.error("%s not written: %s", self.carried, error)

    def _journal(self, line, live):
        """Appends a line (`live`: the change to the count of live bans, 1 or -1), then compacts
        the journal when it has grown past COMPACT_LINES with more dead lines than live ones."""
        with open(self.journal, "ab+") as journal:
            size = journal.seek(0, os.SEEK_END)
            if size:
                journal.seek(size - 1)
                if journal.read(1) != b"\n":
                    # A last line torn by a write that failed (a full disk): this line goes on a
                    # line of its own, not glued to the torn one, which is skipped alone.
                    line = "\n" + line
            journal.write(line.encode())
        self.lines += 1
        self.live = max(0, self.live + live)
        if self.lines >= self.compactlines and self.lines - self.live > self.live:
            self._compact()

    def _compact(self):
        # Read from the file, not from the counts: lines appended by others (carry-over-bans.sh)
        # are kept, and a torn line is skipped as at a start.
        now = int(time.time())
        try:
            kept = {address: end for address, end in read_journal(self.journal).items() if end == 0 or end > now}
            write_journal(self.journal, kept)
        except Exception as error:
            # The journal stays as it was (the rename is the last step). Tried again only after as
            # many lines again, not at every ban while the disk is full.
            self._logSys.error("%s not compacted: %s", self.journal, error)
            self.lines = self.live
            return
        self.lines = self.live = len(kept)

    def ban(self, aInfo):
        address = str(aInfo["ip"])
        with self.lock:
            # A restored ban start() loaded costs nothing; one the journal missed (lost, or made
            # while the action was gone) is banned here like a new one.
            if aInfo["restored"] and address in self.loaded:
                return
            if self.pending.pop(address, 0) is None:
                self.taken[address] = None
                # A carried-over ban start() loaded and journaled: in the set already. One ipset
                # command each would hold the jail's new bans behind thousands of them.
                if address in self.loaded:
                    return
            set_name = "%s-%s" % (self.set, family_of(address))
            add = ["ipset", "-exist", "add", set_name, address]
            added = execute(add)
            if added.returncode != 0:
                if run(["ipset", "-q", "list", "-n", set_name], check=False):
                    # The set is there and refuses the address: full (maxelem). start() would not
                    # help (it reloads every ban, then this one is refused again), and would run for
                    # every ban to come. Not journaled: fail2ban restores it at the next start, when
                    # ban() tries again (it is not among the addresses start() loaded).
                    self._logSys.error("%s is not banned: %s refused it (%s)", address, set_name, added.stderr.strip())
                    return
                # The set is gone (destroyed by hand): made again and loaded.
                self._start()
                run(add)
            bantime = int(aInfo["bantime"])
            self._journal("%d %s\n" % (0 if bantime < 0 else int(aInfo["time"]) + bantime, address), 1)

    def reban(self, aInfo):
        self.ban(aInfo)

    def unban(self, aInfo):
        address = str(aInfo["ip"])
        with self.lock:
            run(["ipset", "-exist", "del", "%s-%s" % (self.set, family_of(address)), address], check=False)
            self._journal("- %s\n" % address, -1)
            # Lifted through fail2ban (or expired): not handed over again.
            self.pending.pop(address, None)
            self.taken.pop(address, None)
