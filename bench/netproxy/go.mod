module dscache/bench/netproxy

go 1.22
