#!/bin/sh
# The loop of old MOR's sh_scripts/global_grid_defense.sh (pionert/mor at f16ebd7b), shortened:
# download an offenders list, one iptables DROP rule per address. The lab's list URL is a
# documentation name that never resolves (nothing leaves the lab).
OFFENDER_LIST="http://offenders.lab.example/offenders"
curl "$OFFENDER_LIST" | sed '/^$/d' > /dev/shm/.IP_ADDRESSES_TO_BAN
while read -r ADDRESS_TO_BAN
do
    iptables -A INPUT -s "$ADDRESS_TO_BAN" -j DROP
done < /dev/shm/.IP_ADDRESSES_TO_BAN
