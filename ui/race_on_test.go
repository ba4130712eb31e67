//go:build race

package ui

// raceSlowdown widens timing targets under the race detector.
const raceSlowdown = 5
