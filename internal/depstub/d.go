package depstub

import (
	_ "github.com/alecthomas/kingpin/v2"
	_ "github.com/bougou/go-ipmi/pkg/client"
	_ "github.com/golang/snappy"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/oklog/run"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/prometheus/common/config"
	_ "github.com/prometheus/common/model"
	_ "github.com/prometheus/common/version"
	_ "github.com/prometheus/prometheus/model/relabel"
	_ "github.com/prometheus/prometheus/model/value"
	_ "github.com/prometheus/prometheus/prompb"
	_ "github.com/stmcginnis/gofish"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v2"
)
