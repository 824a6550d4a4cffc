// Package groups is the Group Services engine: IBM RSCT's GSAPI semantics
// (spec/groupservices.md) as a pure, deterministic replicated state machine
// that runs as a service.Service on the membership engine's views and
// total-order broadcast.
//
// # Why a replicated state machine
//
// RSCT had a nameserver and a group leader per group that collected votes
// and told the others. Conclave's membership layer already gives every
// member the same messages in the same order, and the same views, so every
// agent holds the full replica of every group and applies the same stream:
// requests, votes, phase time-outs, failures and view changes. Every replica
// reaches every decision at the same point of the stream; each agent then
// tells only its own clients. There is no leader to fail over: "group
// leader failover" (S-36) is just a view change. The one decision that
// depends on a clock — a phase time limit — enters the stream: the ring
// representative broadcasts a time-out when its timer expires, and the
// first one delivered closes the phase everywhere.
//
// # Driving it
//
// The host calls Nodelist / Deliver / Installed / Tick and drains Output
// (service.Service). Local clients' calls are the methods Join, Subscribe,
// Vote, ChangeState, SendMessage, Leave, Goodbye, Expel, ChangeAttributes,
// Unsubscribe, ClientGone, Responsiveness and DeactivateDone: they validate
// against the local replica (synchronous HA_GS_* errors, as Error values
// errors.Is can match) and broadcast. The outcome comes back from Ready as
// Notifications addressed to (client, token), and as Deactivations the
// agent must run. The agent also reports this node's links with
// AdapterStatus (the adapter system groups).
//
// # Partitions
//
// Each partition keeps running its copy. At a view change every member
// sends its replica as sync messages tagged with its lineage: the ring it
// was last installed in and its position in that ring's order (how many
// of the ring's deliveries it applied). Two members of one lineage hold
// identical replicas. The ring alone would not do: a member that started a
// view it never installed left its ring with that view's cut, while a
// member that stayed may have delivered more of the ring. At Installed the
// copies are reconciled: a provider stays only if its node is in the view
// and came from that copy's lineage (lineages of one ring whose copies of
// the group are identical count as one instance); for a group in several
// instances the one with the most such providers wins (then the lower
// group-leader node, then the older lineage); the others' providers get a
// merge notification with GROUP_DISSOLVED and their lost state value. A
// local joiner whose join only the winning copy applied (it was in flight
// when the views split) gets a delayed GROUP_DISSOLVED too.
//
// # Message ids and repeats
//
// Every message an engine broadcasts carries an id: its node, the
// engine's incarnation (Config.Incarnation) and a counter. Each group
// records the last id of every sender it applied, and apply skips, per
// group, what that group already applied. The engine asks the host for
// every delivery, repeats included (service.RepeatDeliverer): a repeat is
// a message this node delivered in an earlier view that its sender
// re-sent because its own partition lost it, and after a merge replaced a
// group with another partition's copy, that copy may never have seen it.
// Deciding by id against the replica, every member of the view decides
// alike.
//
// # Proposals chosen and departures from the spec
//
// Where the spec leaves a choice ([P]) or where this engine departs from
// it, the choice and the reason:
//
//   - Numeric values of every enum and error code: the spec's §5 proposals;
//     errors numbered in §5.10 table order (OK=0). Only HA_GS_OK is published.
//   - Node numbers are membership NodeIDs (uint32), not C shorts (U-24).
//   - No nameserver or group leader (§1.2, U-21): total order replaces both.
//     "First received by the GL" (rule 8, S-25) is "first in the total order".
//   - Attributes (§2.3 [P] layout): zero NumPhases reads as one-phase, zero
//     DefaultVote as APPROVE (U-7), zero ClientVersion as the current level;
//     normalised before comparing, so equal meanings match on join.
//   - Time limits are whole seconds, 0 = no limit, max 86400 (U-22). A
//     proposal's own gs_time_limit governs its phases (0 = none); joins and
//     failure leaves use the group's TimeLimit, cast-outs and reflections
//     SourceProtocolTimeLimit.
//   - Tally (§6.2) exactly; default votes combine REJECT-over-APPROVE within
//     a phase and persist for later phases (U-7); missing votes in failure
//     leave and cast-out count as APPROVE without a DEFAULT_APPROVE flag
//     (U-12); EXPLICIT_APPROVE when every final-phase vote was an explicit
//     APPROVE; the tardy announcement also follows approved protocols.
//   - A phase waits for every voter (§6.2 "collect votes until every voter
//     has voted"), even once a failed provider's default REJECT has already
//     decided it; votes may still carry state values or messages.
//   - A provider that fails after voting in the current phase keeps that
//     vote for the phase; the default vote is recorded for it from the next
//     phase on (§6.2 says "fails to vote").
//   - A joiner that fails during its own n-phase join is not added on
//     approval (no join-then-failure-leave pair).
//   - Proposal.Message: a message attached to a vote is shown once, in the
//     next notification; otherwise a PROVIDER_MESSAGE protocol's own message
//     is shown in every notification of the protocol. ProposedMembership is
//     an addition: the membership the protocol leaves if approved.
//   - Notifications of rejected joins also list the proposed membership; the
//     joiner's token dies with no delayed error (U-4 e).
//   - Subscribers are local to their node (§1.1: known only to Group
//     Services): no broadcast, no replicated record. The initial snapshot
//     comes from the local replica and always carries the full membership
//     when membership is subscribed, even with DELTAS_ONLY (it is the
//     starting point for the deltas).
//   - Collisions (U-16): a provider proposal runs only in an idle group with
//     nothing queued; sync COLLIDE when the local replica is busy, async
//     when a racing proposal won in the total order. One-phase proposals end
//     when delivered, so two racing one-phase proposals both run.
//   - Queue priority (U-8): failure leaves, cast-outs, joins, reflections.
//     Failures of one event (one node, one client, one view change) are one
//     batch whatever the batch control; BATCH_LEAVES merges batches.
//   - Expel (U-9, U-10): the agent runs the script (Deactivation output);
//     a provider without a script succeeds at once; in the deactivate phase
//     the expelled provider's ballot completes when its script result and
//     its vote are in (a failed script settles it as REJECT). The deactivate
//     phase's timer is the larger of the phase and script limits; one-phase
//     expels wait for the scripts (limit: the script limit) and are approved
//     with the deactivate flags. The engine does not enforce uid or kill
//     scripts: that is the agent's job.
//   - Source-target (U-11): binding by SourceGroupName; target joins need a
//     source provider on the same node (sync when known locally, async
//     otherwise); chains allowed, cycles refused. Cast-out when a node has
//     no source provider left; reflection after every approved source state
//     change. System groups are not usable as sources yet.
//   - Dissolution (U-27): when the last provider goes, subscribers get
//     SUBSCRIPTION_DISSOLVED and the group is forgotten, unless joins are
//     queued, which re-create it with the same attributes.
//   - Merge (U-13): DONT_MERGE is only partly implemented: the winner's
//     providers also get a merge notification (summary 0) listing the other
//     side, but the losing instance is still dissolved — two live instances
//     under one name are not supported. Merge notifications carry both the
//     dissolved instance's state (MergeState) and the winner's.
//   - Goodbye returns HA_GS_BACKLEVEL_PROVIDERS when the group has back-level
//     providers (ClientVersion below ClientVersionLevel); an attribute change
//     in such a group fails asynchronously with the list (S-28).
//   - ClientGone(quit=true) gives leave reason PROVIDER_QUIT, otherwise
//     PROVIDER_FAILED_LEAVE; a node leaving the view gives
//     PROVIDER_FAILED_LEAVE.
//   - Responsiveness (U-15): the agent detects misses and calls
//     Responsiveness; every provider of the client's groups gets the
//     announcement; nobody is removed.
//   - System groups (U-19): ha_gs_host_membership (one provider (node, 0)
//     per member of the installed view, state value = ring id) and
//     ha_gs_adapter_membership.link<L> (one provider (node, L) per member
//     whose link L is up as that node reports it; empty state value). A
//     link's state is its node's own knowledge: the node announces its up
//     links in the ordered stream when they change and in its sync header
//     at every view change, and Installed rebuilds the adapters from the
//     headers, so every replica agrees (adapter.go). An adapter group with
//     no adapter up cannot be subscribed to (UNKNOWN_GROUP), but an existing
//     subscription survives it going empty. Special data (§2.8) is not
//     implemented. Both are read-only; the adapter prefix and names
//     starting with "_" are reserved too (U-5).
//   - Wire format: JSON envelopes (readable in traces), each normal message
//     with its id; every member sends its whole replica, tagged with its
//     lineage, in the sync step.
package groups
