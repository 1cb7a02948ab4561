"""Control groups on v1, unified (v2) and hybrid hosts.

One module per concern: `layout` finds the hierarchies, `paths` resolves `cgroupsPath`,
`resources` turns `linux.resources` into file writes (pure), `devices` the device allow-list
(v1 lines and the v2 eBPF program, both as data), `bpf` loads that program, `manager` creates,
joins, freezes and removes the directories, `stats` and `events` read them back, and `setup`
ties them together for `create`. Everything the hot commands (state, kill, delete, pause, ps)
use lives in `manager`, which imports neither attrs nor the spec model.
"""
