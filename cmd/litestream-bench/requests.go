// requests.go measures the backend requests a replicating database makes
// at default settings, extrapolated to a day, for the request table in the
// README: LIST, GET and PUT per day at one commit every 5 s and every 1 s.
// (The idle figure measures the idle case: zero requests.)

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
)

// listBudgetPerDay is the most LIST requests an active database may make
// in a day at default settings.
const listBudgetPerDay = 100

func benchRequests(cfg config) ([]row, error) {
	var rows []row
	for _, every := range []time.Duration{5 * time.Second, time.Second} {
		r, err := requestsAtRate(cfg, every)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// requestsAtRate replicates one database at default settings, committing
// once per every, and counts requests over cfg.requestWindow after a
// warm-up that covers opening and the first compactions.
func requestsAtRate(cfg config, every time.Duration) ([]row, error) {
	dir := filepath.Join(cfg.dir, "requests-"+every.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := openReplicated(filepath.Join(dir, "db"), filepath.Join(dir, "replica"),
		litestream.DefaultMonitorInterval, litestream.DefaultSyncInterval, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.close() }()
	app, err := openApp(r.db.Path())
	if err != nil {
		return nil, err
	}
	defer func() { _ = app.Close() }()

	commitFor := func(d time.Duration) (int, error) {
		n := 0
		next := time.Now()
		for deadline := time.Now().Add(d); time.Now().Before(deadline); n++ {
			if err := insert(app); err != nil {
				return n, err
			}
			next = next.Add(every)
			time.Sleep(time.Until(next))
		}
		return n, nil
	}
	if _, err := commitFor(cfg.requestWarmup); err != nil {
		return nil, err
	}
	before := r.client.methodCounts()
	_, err = commitFor(cfg.requestWindow)
	if err != nil {
		return nil, err
	}
	after := r.client.methodCounts()
	perDay := func(method string) float64 {
		return float64(after[method]-before[method]) * float64(24*time.Hour) / float64(cfg.requestWindow)
	}
	rewrites := after["rewrite"] - before["rewrite"]
	base := fmt.Sprintf("1 commit per %s, defaults, %s window", every, cfg.requestWindow)
	name := fmt.Sprintf("requests/day at 1 commit per %s:", every)
	return []row{
		{figure: name + " LIST", budget: fmt.Sprintf("<= %d", listBudgetPerDay), baseline: base, measured: fmt.Sprintf("%.0f", perDay("LTXFiles")), pass: perDay("LTXFiles") <= listBudgetPerDay},
		{figure: name + " PUT", budget: "new files only", baseline: base, measured: fmt.Sprintf("%.0f (%d of an existing name)", perDay("WriteLTXFile"), rewrites), pass: rewrites == 0},
		{figure: name + " GET", budget: "0", baseline: base, measured: fmt.Sprintf("%.0f", perDay("OpenLTXFile")), pass: after["OpenLTXFile"] == before["OpenLTXFile"]},
		{figure: name + " DELETE", budget: "ref", baseline: base, measured: fmt.Sprintf("%.0f", perDay("DeleteLTXFiles")), ref: true},
	}, nil
}
