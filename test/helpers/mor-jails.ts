// Jail sections as MOR-style installers append them to /etc/fail2ban/jail.conf: each with its own
// `action` (iptables with a name of its own, a second mail action), the per-jail actions that a
// jail.d section without `action` would inherit.
export const morJailConf = `
[ssh-iptables]
enabled  = true
filter   = sshd
action   = iptables[name=SSH, port=ssh, protocol=tcp]
           sendmail-whois[name=SSH, dest=root, sender=fail2ban@example.com]
logpath  = /var/log/auth.log
maxretry = 5

[asterisk-iptables]
enabled  = true
filter   = asterisk
action   = iptables-allports[name=ASTERISK, protocol=all]
           sendmail-whois[name=ASTERISK, dest=root, sender=fail2ban@example.com]
logpath  = /var/log/asterisk/messages
maxretry = 5
bantime  = 600

[asterisk-manager]
enabled  = true
filter   = asterisk
action   = iptables-allports[name=ASTERISK_AMI, protocol=all]
logpath  = /var/log/asterisk/messages
maxretry = 1
bantime  = -1
`;

/** The actions each jail gets, from `fail2ban-client -d` output: jail -> action names. */
export function actionsByJail(dump: string): Record<string, string[]> {
    const actions: Record<string, string[]> = {};
    for (const match of dump.matchAll(/^\['set', '([^']+)', 'addaction', '([^']+)'/gm)) (actions[match[1]] ??= []).push(match[2]);
    return actions;
}
