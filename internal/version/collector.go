package version

import "github.com/prometheus/client_golang/prometheus"

// NewCollector is the bmcstream_build_info gauge of the build i: always
// 1, with the build's version, revision, branch, goversion, goos and
// goarch as labels, after Prometheus' build_info convention, so a query
// can join any series with the build that made it
// (`… * on(instance) group_left(version) bmcstream_build_info`). Every
// program registers it on its registry (service.NewRegistry does).
func NewCollector(i Info) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bmcstream_build_info",
		Help: "A metric with a constant '1' value labeled by version, revision, branch, goversion, goos and goarch of the bmcstream build.",
		ConstLabels: prometheus.Labels{
			"version":   i.Version,
			"revision":  orUnknown(i.Revision),
			"branch":    i.Branch,
			"goversion": i.GoVersion,
			"goos":      i.GoOS,
			"goarch":    i.GoArch,
		},
	}, func() float64 { return 1 })
}
