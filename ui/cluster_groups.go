package ui

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// clusterGroups answers GET /api/v1/cluster/groups: each group of
// origins (members least loaded first with their load inputs, and which
// member owns which stream) and the recent moves of a class between
// members, as this box's heartbeat last read them. The lists sit at the
// top level and under data, as the other cluster lists.
func (u *UI) clusterGroups(c *gin.Context) {
	groups, moves := u.deps.Cluster.Groups()
	st := u.deps.Cluster.Status()
	stale := st.State != "up" && st.State != "taken"
	e := u.envelope()
	e["groups"], e["moves"], e["stale"], e["registry"] = groups, moves, stale, st
	e["data"] = map[string]any{"groups": groups, "moves": moves, "stale": stale, "registry": st}
	writeJSON(c, http.StatusOK, e)
}
