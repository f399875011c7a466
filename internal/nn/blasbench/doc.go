// Package blasbench measures nn.Gemm against OpenBLAS's cblas_sgemm on the
// vocoder's GEMM shapes, in the same benchmark run. It needs cgo and
// OpenBLAS (Debian: apt-get install libopenblas-dev), so it is built only
// with the openblas tag:
//
//	go test -tags openblas -run '^$' -bench . -cpu 1,2 -count 10 ./internal/nn/blasbench/
//
// Each benchmark sets OpenBLAS's thread count to GOMAXPROCS, so -cpu 1,2
// compares like with like. TestOpenBLASConfig logs the core type and
// kernel OpenBLAS picked (see OPENBLAS_CORETYPE).
package blasbench
