package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// requireGossipKey refuses to run a controller or agent without a gossip
// key unless insecure is set: an unencrypted pool lets anyone who reaches
// the gossip port inject health reports. (`evac dev` is exempt: it runs
// everything in one process on loopback.)
func requireGossipKey(keyFile string, insecure bool) error {
	if keyFile != "" && insecure {
		return errors.New("--gossip-key-file and --insecure-no-gossip-key exclude each other")
	}
	if keyFile == "" && !insecure {
		return errors.New("--gossip-key-file is required (create one with `evac keygen > gossip.key`); " +
			"--insecure-no-gossip-key runs without encryption")
	}
	return nil
}

// onSIGHUP calls f on every SIGHUP until the returned stop is called.
func onSIGHUP(f func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-ch:
				f()
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-finished
	}
}
