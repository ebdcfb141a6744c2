package automation

import (
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// The one place these tests make a sample's labels.

type (
	prompbLabel = prompb.Label
	sampleT     = series.Sample
)

func sampleOf(name, label, value string, t int64, v float64) series.Sample {
	ls := []prompb.Label{{Name: "__name__", Value: name}, {Name: "bmc", Value: "b1"}, {Name: label, Value: value}}
	return series.Sample{Series: series.New(ls), T: t, V: v}
}
