// Package gs is the Go client of Conclave's group services: IBM RSCT Group
// Services' GSAPI (ha_gs.h) call for call, on the local Conclave agent.
//
// A group is a named membership list (its providers, in join order) and a
// state value. Every change to a group — a join, a leave, a failure, a new
// state value, a broadcast message — is a protocol that every provider of
// the group sees, in the same order on every node. A one-phase protocol is
// simply approved; an n-phase protocol is voted on: each provider gets an
// n-phase notification per phase and answers with Vote (APPROVE, CONTINUE
// for another phase, REJECT), so an n-phase protocol is a two-phase commit
// and a barrier at once. Subscribers follow a group's approved changes
// without being part of it.
//
// # Using it
//
// Init connects a client to the agent on this node (the socket is
// WithSocket, else $CONCLAVE_SOCKET, else /run/conclave/conclave.sock; the
// agent serves root, its own user and the uids and groups of its
// configuration, the role RSCT gave the hagsuser group). Join makes the
// client a provider of a group and registers its callbacks; the calls
// that propose changes take the provider's token. Callbacks run only
// inside Dispatch or Run, on the caller's goroutine, never two of one
// group at once; Fd is readable while notifications wait, for programs
// that poll. Vote may be called from a callback or from any goroutine.
//
// Errors are Error values with the ha_gs_rc_t names (errors.Is(err,
// gs.ErrCollide)); an error found after a request was accepted reaches the
// delayed-error callback instead. Constants keep the agent's numbers, so a
// C library could sit on this package.
//
// # From C to Go
//
//	ha_gs_init                        Init(Callbacks, ...Option) → *Client
//	  socket_options                    WithAdapterInfo (HA_GS_SOCKET_NO_SIGNAL is implied)
//	  responsiveness_control            WithResponsiveness(Responsiveness)
//	  deactivate_script                 WithDeactivateScript(path)
//	  responsiveness_callback           Callbacks.Responsiveness
//	  delayed_error_callback            Callbacks.DelayedError
//	  query_callback                    (none: never called, spec U-17)
//	  HA_DOMAIN_NAME                    WithDomain, else $HA_DOMAIN_NAME (DomainEnv)
//	ha_gs_descriptor_t                (*Client).Fd
//	ha_gs_dispatch(HA_GS_BLOCKING)    (*Client).Dispatch(Blocking), or (*Client).Run(ctx)
//	ha_gs_dispatch(HA_GS_NON_BLOCKING) (*Client).Dispatch(NonBlocking)
//	ha_gs_quit                        (*Client).Quit
//	ha_gs_join                        (*Client).Join(JoinRequest) → Token
//	ha_gs_subscribe                   (*Client).Subscribe(SubscribeRequest) → Token
//	ha_gs_unsubscribe                 (*Client).Unsubscribe
//	ha_gs_vote                        (*Client).Vote
//	ha_gs_change_state_value          (*Client).ChangeStateValue(Token, StateChangeRequest)
//	ha_gs_send_message                (*Client).SendMessage(Token, MessageRequest)
//	ha_gs_leave                       (*Client).Leave(Token, LeaveRequest)
//	ha_gs_goodbye                     (*Client).Goodbye
//	ha_gs_expel                       (*Client).Expel(Token, ExpelRequest)
//	ha_gs_change_attributes           (*Client).ChangeAttributes(Token, ChangeAttributesRequest)
//	ha_gs_get_node_number             (*Client).NodeNumber
//	ha_gs_get_adapter_info            (*Client).AdapterInfo(netip.Addr) → Adapter
//	ha_gs_get_ffdc_id                 (none: the agent has no FFDC ids)
//
//	ha_gs_n_phase_callback            ProviderCallbacks.NPhase(*NPhaseNotification)
//	ha_gs_protocol_approved_callback  ProviderCallbacks.Approved(*ApprovedNotification)
//	ha_gs_protocol_rejected_callback  ProviderCallbacks.Rejected(*RejectedNotification)
//	ha_gs_announcement_callback       ProviderCallbacks.Announcement(*AnnouncementNotification)
//	ha_gs_merge_callback              ProviderCallbacks.Merge(*MergeNotification)
//	ha_gs_subscriber_callback         SubscribeRequest.Callback(*SubscriptionNotification)
//	ha_gs_responsiveness_callback     Callbacks.Responsiveness(*ResponsivenessNotification) CallbackRC
//	ha_gs_delayed_error_callback      Callbacks.DelayedError(*DelayedErrorNotification)
//
//	ha_gs_rc_t                        Error (OK, ErrNotOK, ErrCollide, ...)
//	ha_gs_token_t                     Token
//	ha_gs_provider_t                  ProviderID{Node, Instance}
//	ha_gs_membership_t                []ProviderID (join order)
//	ha_gs_state_value_t               []byte (nil = NULL, []byte{} = empty)
//	ha_gs_provider_message_t          []byte
//	ha_gs_group_attributes_t          Attributes
//	ha_gs_proposal_t                  Proposal
//	ha_gs_phase_info_t                PhaseInfo
//	gs_leave_info                     []LeaveInfo
//	ha_gs_proposal_info_t             JoinRequest, LeaveRequest, ExpelRequest, StateChangeRequest,
//	                                  MessageRequest, ChangeAttributesRequest, SubscribeRequest;
//	                                  a failing copy is a Request
//	ha_gs_request_t                   ProtocolType (ProtoJoin, ...)
//	ha_gs_notification_type_t         NotificationType
//	ha_gs_summary_code_t              SummaryCode (flags; String gives the C names)
//	ha_gs_vote_value_t                VoteValue (VoteApprove, VoteContinue, VoteReject, NullVote)
//	ha_gs_num_phases_t                NumPhases (OnePhase, NPhase)
//	ha_gs_time_limit_t                uint32 seconds, 0 = no limit
//	ha_gs_batch_ctrl_t                BatchControl
//	ha_gs_merge_ctrl_t                MergeControl
//	ha_gs_subscription_ctrl_t         SubscriptionControl
//	ha_gs_subscription_type_t         SubscriptionType
//	ha_gs_responsiveness_t            Responsiveness (durations instead of seconds)
//	ha_gs_callback_rc_t               CallbackRC
//	ha_gs_adapter_info                Adapter
//	gs_whats_changed                  Changed
//
// # Where the Go API differs
//
//   - Init returns a handle, and a process may hold several: each is a
//     separate GS client (ErrExists is returned only for a second init on
//     one connection, which this package never sends).
//   - Notifications carry the group's name and the ring id of the view they
//     were produced in, and proposals the membership if approved
//     (ProposedMembership).
//   - Node numbers are Conclave node ids (uint32).
//   - AdapterInfo accepts IPv6 addresses too, and reports the link number.
//   - Responsiveness intervals are durations (at least 100 ms), not seconds.
//     PING checks are answered by Dispatch (the callback), COUNTER checks by
//     the library sampling a counter the client increments.
//   - A client whose queue of undispatched notifications exceeds MaxQueued,
//     or that stops reading so that the agent's queue for it fills, is
//     disconnected: its providers fail out of their groups rather than
//     hold them back. Phase time limits bound how long a provider that
//     stops dispatching can hold a protocol.
//   - System groups: the host-membership group (HostGroupName) and one
//     adapter-membership group per link, AdapterGroupPrefix followed by
//     "link" and the link number: the network is named by its link number
//     and each adapter is the provider (node, instance = link number).
//     Subscription special data (adapter death and alias arrays) is not
//     implemented.
//
// The choices the spec leaves open ([P]), and where the service departs
// from it, are listed in the documentation of the agent's engine
// (internal/groups/doc.go).
package gs
