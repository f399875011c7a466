# Turns `go test -bench Gemm` output of internal/nn/blasbench (or of
# internal/nn) into a table: shape, threads, nn GFLOP/s, OpenBLAS GFLOP/s
# and their ratio. Repeated runs (-count) are reduced to their median.
# Used by `make bench`.
/^BenchmarkGemm\// {
	name = $1
	threads = 1
	if (match(name, /-[0-9]+$/)) { threads = substr(name, RSTART + 1); name = substr(name, 1, RSTART - 1) }
	split(name, part, "/")
	shape = part[2]; impl = (part[3] == "" ? "nn" : part[3])
	for (i = 2; i < NF; i++) if ($(i + 1) == "GFLOP/s") v = $i
	key = shape SUBSEP threads SUBSEP impl
	vals[key] = vals[key] " " v
	if (!(shape SUBSEP threads in seen)) { seen[shape SUBSEP threads] = 1; order[++n] = shape SUBSEP threads }
}
function median(s,    a, k, i, j, t) {
	k = split(s, a, " ")
	if (k == 0) return ""
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
END {
	printf "%-20s %7s %12s %12s %7s\n", "shape", "threads", "nn GFLOP/s", "OpenBLAS", "ratio"
	for (i = 1; i <= n; i++) {
		split(order[i], sk, SUBSEP)
		a = median(vals[order[i] SUBSEP "nn"]); b = median(vals[order[i] SUBSEP "openblas"])
		if (b == "") printf "%-20s %7s %12.1f %12s %7s\n", sk[1], sk[2], a, "-", "-"
		else printf "%-20s %7s %12.1f %12.1f %7.2f\n", sk[1], sk[2], a, b, a / b
	}
}
