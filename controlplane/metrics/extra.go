package metrics

import "github.com/prometheus/client_golang/prometheus"

// Register adds more collectors (a controller's own, e.g. its GeoIP
// database's) to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
