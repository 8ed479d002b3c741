package main

// The time zone database is embedded so that schedules' time zones (tz) load
// the same on every controller and in the CLI, whatever the host provides.
import _ "time/tzdata"
