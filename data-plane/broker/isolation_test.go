package broker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// isoCase aims one API at tenant A's resources: reqs build the requests
// (several when an API names resources in several ways), check judges one
// broker's answer, nil meaning it shows denial or absence.
type isoCase struct {
	reqs  []func() kmsg.Request
	check func(kmsg.Response) error
	raw   bool // SASL and ApiVersions: sent on a fresh connection (isoRaw)
}

// errorCodes collects every ErrorCode field of a response, at any depth.
func errorCodes(v reflect.Value, out *[]int16) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			errorCodes(v.Elem(), out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				*out = append(*out, int16(v.Field(i).Int()))
			}
			errorCodes(v.Field(i), out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			errorCodes(v.Index(i), out)
		}
	}
}

// refusals are the answers that show denial or absence.
var refusals = map[int16]bool{
	kerr.UnknownTopicOrPartition.Code: true, kerr.UnknownTopicID.Code: true,
	kerr.TopicAuthorizationFailed.Code: true, kerr.GroupAuthorizationFailed.Code: true,
	kerr.ClusterAuthorizationFailed.Code: true, kerr.TransactionalIDAuthorizationFailed.Code: true,
	kerr.GroupIDNotFound.Code: true, kerr.UnknownMemberID.Code: true,
	// Only the broker coordinating a group id answers for it; the others
	// say so, which names nothing.
	kerr.NotCoordinator.Code: true,
}

// refused: every non-zero error code is a refusal (or one of also, the
// answers B's own namespace gives for a name it does not hold), and there
// is at least one.
func refused(also ...*kerr.Error) func(kmsg.Response) error {
	return func(r kmsg.Response) error {
		var codes []int16
		errorCodes(reflect.ValueOf(r), &codes)
		refusedOne := false
	next:
		for _, c := range codes {
			if c == 0 {
				continue // e.g. a top-level code of a per-resource answer
			}
			if refusals[c] {
				refusedOne = true
				continue
			}
			for _, e := range also {
				if e.Code == c {
					refusedOne = true
					continue next
				}
			}
			return fmt.Errorf("error code %v is neither denial nor absence", kerr.ErrorForCode(c))
		}
		if !refusedOne {
			return fmt.Errorf("no refusal in the answer")
		}
		return nil
	}
}

// TestIsolationMatrix runs every API in the broker's table (as ApiVersions
// advertises it) as tenant B against tenant A's topic, group, transactional
// id and ACL names — as B's org admin (who may do anything in B's cluster)
// and as a B service account with no grants — and asserts denial or
// absence. An API without a case fails the test. No response ever holds
// A's data, cluster id, service accounts, topic ids or unrequested names,
// and A's resources are intact afterwards. Both tenants have a topic
// "orders" and see only their own.
func TestIsolationMatrix(t *testing.T) {
	url, ts := tenants(t, "iso-a", "iso-b")
	a, b := ts[0], ts[1]
	aNobody := newAccount(t, url, a, "a-nobody")
	bNobody := newAccount(t, url, b, "b-nobody")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// B's cluster creates no topics on use, so B's requests naming A's
	// topics cannot quietly make B's own.
	dst, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.SetAutoCreateTopics(ctx, b.cluster, false); err != nil {
		t.Fatal(err)
	}
	// Each tenant's producer rate, as DescribeClientQuotas shows it.
	ingress := map[string]float64{}
	for _, cl := range []string{a.cluster, b.cluster} {
		own, ceil, err := dst.Limits(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		ingress[cl] = float64(own.Capped(ceil).IngressMBps)
	}
	dst.Close()

	authA := kgo.SASL(plain.Auth{User: a.keyID, Pass: a.secret}.AsMechanism())
	authB := kgo.SASL(plain.Auth{User: b.keyID, Pass: b.secret}.AsMechanism())
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2,
		BrokerArgs: []string{"--anonymous-cluster=", "--sasl-mechanisms=PLAIN", "--share-auto-offset-reset=earliest"}, ClientOpts: []kgo.Opt{authA}})

	// A's resources.
	const aTopic, aGroup, aTxn, aACLTopic = "a-orders", "a-group", "a-txn", "a-secret"
	// B's producer rate; B's admin lowers it by 1 MB/s (AlterClientQuotas),
	// which must leave A's as it is.
	bIngress := ingress[b.cluster]
	secret := "a-secret-value-" + rand.Text()
	clA := newClient(t, s, authA)
	admA := kadm.NewClient(clA)
	createTopic(t, clA, aTopic, 2, map[string]*string{"retention.ms": kmsg.StringPtr("86400000")})
	createTopic(t, clA, "orders", 1, nil)
	for _, topic := range []string{aTopic, "orders"} {
		if err := clA.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(secret)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: aTopic, Partition: 0, At: 1, LeaderEpoch: -1})
	if r, err := admA.CommitOffsets(ctx, aGroup, offs); err != nil || r.Error() != nil {
		t.Fatalf("A commits: %v %v", err, r.Error())
	}
	if rs, err := admA.CreateACLs(ctx, kadm.NewACLs().Allow("User:"+aNobody.sa).Topics(aACLTopic).Operations(kadm.OpRead)); err != nil || rs[0].Err != nil {
		t.Fatalf("A creates an ACL: %v %v", err, rs)
	}
	// A's transaction, ongoing on its topic.
	initA := kmsg.NewPtrInitProducerIDRequest()
	initA.TransactionalID, initA.TransactionTimeoutMillis = kmsg.StringPtr(aTxn), 600000
	ir, err := initA.RequestWith(ctx, clA)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("A's InitProducerId: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	aPID, aEpoch := ir.ProducerID, ir.ProducerEpoch
	addA := kmsg.NewPtrAddPartitionsToTxnRequest()
	addA.Version, addA.TransactionalID, addA.ProducerID, addA.ProducerEpoch = 3, aTxn, aPID, aEpoch
	addT := kmsg.NewAddPartitionsToTxnRequestTopic()
	addT.Topic, addT.Partitions = aTopic, []int32{0}
	addA.Topics = append(addA.Topics, addT)
	if ar, err := addA.RequestWith(ctx, clA); err != nil || ar.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("A's AddPartitionsToTxn: %v %+v", err, ar)
	}
	td, err := admA.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aTopicID, aOrdersID := td[aTopic].ID, td["orders"].ID
	// A's internal topics have ids of A's cluster.
	itd, err := admA.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil || !itd["__consumer_offsets"].IsInternal {
		t.Fatalf("A's __consumer_offsets: %v %+v", err, itd)
	}
	aOffsetsID := itd["__consumer_offsets"].ID
	// A's share group: a member that accepted A's record and stays.
	const aShare = "a-share"
	shareA := newClient(t, s, authA, kgo.ShareGroup(aShare), kgo.ConsumeTopics(aTopic), kgo.FetchMaxWait(500*time.Millisecond))
	for got := 0; got == 0 && ctx.Err() == nil; {
		got = len(shareA.PollFetches(ctx).Records())
	}
	shareA.MarkAcks(kgo.AckAccept)
	if err := shareA.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	aShareMember := shareMemberOf(t, clA, aShare)
	// B's own "orders".
	clBAdmin := newClient(t, s, authB)
	createTopic(t, clBAdmin, "orders", 3, nil)

	// Nothing of these may ever reach B.
	forbidden := map[string][]byte{
		"A's record value": []byte(secret), "A's cluster id": []byte(a.cluster),
		"A's admin account": []byte(a.sa), "A's account": []byte(aNobody.sa),
		"A's ACL resource": []byte(aACLTopic), "A's topic id": aTopicID[:], "A's orders id": aOrdersID[:],
		"A's __consumer_offsets id": aOffsetsID[:],
		"A's share member":          []byte(aShareMember),
	}
	// Listings name no A resource at all.
	listingForbidden := map[string][]byte{"A's topic": []byte(aTopic), "A's group": []byte(aGroup)}

	// noneOf: the answer holds none of m's values, except those the
	// request itself named (answers echo what they were asked about).
	var sent []byte
	noneOf := func(m map[string][]byte) func(kmsg.Response) error {
		return func(r kmsg.Response) error {
			raw := r.AppendTo(nil)
			for what, b := range m {
				if bytes.Contains(raw, b) && !bytes.Contains(sent, b) {
					return fmt.Errorf("holds %s", what)
				}
			}
			return nil
		}
	}
	either := func(checks ...func(kmsg.Response) error) func(kmsg.Response) error {
		return func(r kmsg.Response) error {
			var errs []string
			for _, c := range checks {
				err := c(r)
				if err == nil {
					return nil
				}
				errs = append(errs, err.Error())
			}
			return fmt.Errorf("%s", strings.Join(errs, "; or "))
		}
	}
	// own: the answer concerns B's own namespace (no error), and the
	// extra test says it shows nothing of A's.
	own := func(extra func(kmsg.Response) error) func(kmsg.Response) error {
		return func(r kmsg.Response) error {
			var codes []int16
			errorCodes(reflect.ValueOf(r), &codes)
			for _, c := range codes {
				if c != 0 {
					return fmt.Errorf("error %v", kerr.ErrorForCode(c))
				}
			}
			if extra != nil {
				return extra(r)
			}
			return nil
		}
	}

	topicReq := func(f func(topic string) kmsg.Request) func() kmsg.Request {
		return func() kmsg.Request { return f(aTopic) }
	}
	// A's fetch sessions, one on each broker: B naming their ids must
	// get FETCH_SESSION_ID_NOT_FOUND, as for an id that never was.
	brokers, err := admA.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// kgo sends the newest Fetch both sides know (v13+ names topics by
	// id), whatever version the request says.
	aTopics, err := admA.ListTopics(ctx, aTopic)
	if err != nil || aTopics[aTopic].Err != nil {
		t.Fatalf("A's topic: %v %v", err, aTopics[aTopic].Err)
	}
	var aSessions []func() kmsg.Request
	for _, br := range brokers {
		open := fetchReq(aTopic, 0)
		open.SessionEpoch, open.Topics[0].TopicID = 0, aTopics[aTopic].ID
		r, err := open.RequestWith(ctx, clA.Broker(int(br.NodeID)))
		if err != nil || r.SessionID == 0 {
			t.Fatalf("A's fetch session on broker %d: %v, session %d", br.NodeID, err, r.SessionID)
		}
		aSessions = append(aSessions, func() kmsg.Request {
			inc := fetchReq(aTopic, 0)
			inc.SessionID, inc.SessionEpoch, inc.Topics = r.SessionID, 1, nil
			return inc
		})
	}
	cases := map[int16]isoCase{
		0: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.Version, r.Acks, r.TimeoutMillis = 9, 1, 5000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = validBatch([]byte("from-b"))
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		1: {reqs: append([]func() kmsg.Request{
			func() kmsg.Request { return fetchReq(aTopic, 0) },
			func() kmsg.Request {
				r := fetchReq("", 0)
				r.Version, r.Topics[0].TopicID = 13, aTopicID
				return r
			},
		}, aSessions...), check: refused(kerr.FetchSessionIDNotFound)},
		2: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrListOffsetsRequest()
			r.Version = 7
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = -1
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		3: {reqs: []func() kmsg.Request{
			func() kmsg.Request {
				r := kmsg.NewPtrMetadataRequest()
				r.Version, r.AllowAutoTopicCreation = 12, true
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(aTopic)
				r.Topics = append(r.Topics, rt)
				return r
			},
			func() kmsg.Request {
				r := kmsg.NewPtrMetadataRequest()
				r.Version = 12
				rt := kmsg.NewMetadataRequestTopic()
				rt.TopicID = aTopicID
				r.Topics = append(r.Topics, rt)
				return r
			},
			func() kmsg.Request {
				r := kmsg.NewPtrMetadataRequest()
				r.Version = 12
				rt := kmsg.NewMetadataRequestTopic()
				rt.TopicID = [16]byte(aOffsetsID)
				r.Topics = append(r.Topics, rt)
				return r
			},
		}, check: refused()},
		8: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrOffsetCommitRequest()
			r.Version, r.Group, r.Generation = 8, aGroup, -1
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = aTopic
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = 5
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		}}, check: refused()},
		9: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrOffsetFetchRequest()
			r.Version, r.Group = 7, aGroup
			return r
		}}, check: either(refused(), own(func(r kmsg.Response) error {
			if n := len(r.(*kmsg.OffsetFetchResponse).Topics); n > 0 {
				return fmt.Errorf("%d topics of offsets", n)
			}
			return nil
		}))},
		10: {reqs: []func() kmsg.Request{
			func() kmsg.Request {
				r := kmsg.NewPtrFindCoordinatorRequest()
				r.Version, r.CoordinatorKey = 3, aGroup
				return r
			},
			func() kmsg.Request {
				r := kmsg.NewPtrFindCoordinatorRequest()
				r.Version, r.CoordinatorKey, r.CoordinatorType = 3, aTxn, 1
				return r
			},
		}, // B's own namespace has a coordinator for any id: a broker of the shared pool.
			check: either(refused(kerr.CoordinatorNotAvailable), own(nil))},
		11: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrJoinGroupRequest()
			r.Version, r.Group, r.ProtocolType, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 9, aGroup, "consumer", 10000, 10000
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
			r.Protocols = append(r.Protocols, p)
			return r
		}}, // B's own group of that name asks for a member id first.
			check: refused(kerr.MemberIDRequired)},
		12: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrHeartbeatRequest()
			r.Version, r.Group, r.Generation, r.MemberID = 4, aGroup, 1, "member-of-a"
			return r
		}}, check: refused(kerr.IllegalGeneration)},
		13: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrLeaveGroupRequest()
			r.Version, r.Group = 5, aGroup
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = "member-of-a"
			r.Members = append(r.Members, m)
			return r
		}}, check: refused()},
		14: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrSyncGroupRequest()
			r.Version, r.Group, r.Generation, r.MemberID = 5, aGroup, 1, "member-of-a"
			r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			return r
		}}, check: refused(kerr.IllegalGeneration)},
		15: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDescribeGroupsRequest()
			r.Version, r.Groups = 5, []string{aGroup}
			return r
		}}, check: either(refused(), own(func(r kmsg.Response) error {
			g := r.(*kmsg.DescribeGroupsResponse).Groups[0]
			if g.State != "Dead" || len(g.Members) > 0 {
				return fmt.Errorf("group is %s with %d members", g.State, len(g.Members))
			}
			return nil
		}))},
		16: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrListGroupsRequest()
			r.Version = 4
			return r
		}}, check: own(noneOf(listingForbidden))},
		17: {raw: true},
		18: {raw: true},
		19: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrCreateTopicsRequest()
			r.Version, r.ValidateOnly, r.TimeoutMillis = 7, true, 5000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, -1
			r.Topics = append(r.Topics, rt)
			return r
		})}, // B may name a topic of its own as A's is named (validate only).
			check: either(refused(), own(nil))},
		20: {reqs: []func() kmsg.Request{
			func() kmsg.Request {
				r := kmsg.NewPtrDeleteTopicsRequest()
				r.Version = 6
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = kmsg.StringPtr(aTopic)
				r.Topics = append(r.Topics, rt)
				return r
			},
			func() kmsg.Request {
				r := kmsg.NewPtrDeleteTopicsRequest()
				r.Version = 6
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.TopicID = aTopicID
				r.Topics = append(r.Topics, rt)
				return r
			},
		}, check: refused()},
		21: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrDeleteRecordsRequest()
			r.Version, r.TimeoutMillis = 2, 5000
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = 1
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		// B's own namespace may hold a transactional id of the same name:
		// B's admin starts it, and the transaction APIs below find B's own
		// (another producer id than A's) or none.
		22: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrInitProducerIDRequest()
			r.Version, r.TransactionalID, r.TransactionTimeoutMillis = 4, kmsg.StringPtr(aTxn), 10000
			return r
		}}, check: either(refused(kerr.ConcurrentTransactions), own(nil))},
		24: {reqs: []func() kmsg.Request{
			topicReq(func(topic string) kmsg.Request {
				r := kmsg.NewPtrAddPartitionsToTxnRequest()
				r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch = 3, aTxn, aPID, aEpoch
				rt := kmsg.NewAddPartitionsToTxnRequestTopic()
				rt.Topic, rt.Partitions = topic, []int32{0}
				r.Topics = append(r.Topics, rt)
				return r
			}),
			topicReq(func(topic string) kmsg.Request {
				r := kmsg.NewPtrAddPartitionsToTxnRequest()
				r.Version = 5
				tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
				tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = aTxn, aPID, aEpoch, true
				rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
				rt.Topic, rt.Partitions = topic, []int32{0}
				tx.Topics = append(tx.Topics, rt)
				r.Transactions = append(r.Transactions, tx)
				return r
			}),
		}, check: refused(kerr.OperationNotAttempted)},
		25: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrAddOffsetsToTxnRequest()
			r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = 3, aTxn, aPID, aEpoch, aGroup
			return r
		}}, check: refused(kerr.InvalidProducerIDMapping)},
		26: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrEndTxnRequest()
			r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = 3, aTxn, aPID, aEpoch, false
			return r
		}}, check: refused(kerr.InvalidProducerIDMapping)},
		28: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrTxnOffsetCommitRequest()
			r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = 3, aTxn, aPID, aEpoch, aGroup
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Offset = 0
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		65: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDescribeTransactionsRequest()
			r.TransactionalIDs = []string{aTxn}
			return r
		}}, check: either(refused(kerr.TransactionalIDNotFound), own(func(r kmsg.Response) error {
			for _, st := range r.(*kmsg.DescribeTransactionsResponse).TransactionStates {
				if st.ProducerID == aPID || len(st.Topics) > 0 {
					return fmt.Errorf("describes A's transaction: %+v", st)
				}
			}
			return nil
		}))},
		66: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrListTransactionsRequest()
			r.Version = 2
			return r
		}}, check: own(func(r kmsg.Response) error {
			for _, st := range r.(*kmsg.ListTransactionsResponse).TransactionStates {
				if st.ProducerID == aPID {
					return fmt.Errorf("lists A's transaction: %+v", st)
				}
			}
			return nil
		})},
		23: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrOffsetForLeaderEpochRequest()
			r.Version, r.ReplicaID = 4, -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, 0
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		29: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDescribeACLsRequest()
			r.Version, r.ResourceType, r.ResourcePatternType = 3, kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			r.Operation, r.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return r
		}}, check: either(refused(), own(func(r kmsg.Response) error {
			if n := len(r.(*kmsg.DescribeACLsResponse).Resources); n > 0 {
				return fmt.Errorf("%d ACL resources", n)
			}
			return nil
		}))},
		30: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrCreateACLsRequest()
			r.Version = 3
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, aTopic, kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = "User:"+bNobody.sa, "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
			r.Creations = append(r.Creations, c)
			return r
		}}, // In B's own cluster: it can grant nothing in A's (checked below).
			check: either(refused(), own(nil))},
		31: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDeleteACLsRequest()
			r.Version = 3
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			r.Filters = append(r.Filters, f)
			return r
		}}, check: either(refused(), own(nil))}, // A's ACL is checked below
		32: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrDescribeConfigsRequest()
			r.Version = 4
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			r.Resources = append(r.Resources, rr)
			return r
		})}, check: refused()},
		33: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrAlterConfigsRequest()
			r.Version = 2
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			cf := kmsg.NewAlterConfigsRequestResourceConfig()
			cf.Name, cf.Value = "retention.ms", kmsg.StringPtr("1")
			rr.Configs = append(rr.Configs, cf)
			r.Resources = append(r.Resources, rr)
			return r
		})}, check: refused()},
		36: {raw: true},
		37: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrCreatePartitionsRequest()
			r.Version, r.TimeoutMillis = 3, 5000
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = topic, 5
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		42: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDeleteGroupsRequest()
			r.Version, r.Groups = 2, []string{aGroup}
			return r
		}}, check: refused()},
		44: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r.Version = 1
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			cf := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cf.Name, cf.Value = "retention.ms", kmsg.StringPtr("1")
			rr.Configs = append(rr.Configs, cf)
			r.Resources = append(r.Resources, rr)
			return r
		})}, check: refused()},
		47: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrOffsetDeleteRequest()
			r.Group = aGroup
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = aTopic
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		}}, check: refused()},
		48: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDescribeClientQuotasRequest()
			r.Version = 1
			c := kmsg.NewDescribeClientQuotasRequestComponent()
			c.EntityType, c.MatchType = "user", 2
			r.Components = append(r.Components, c)
			return r
		}}, check: either(refused(), own(func(r kmsg.Response) error {
			// B's own rates: the default user's, B's limits.
			for _, e := range r.(*kmsg.DescribeClientQuotasResponse).Entries {
				for _, v := range e.Values {
					if v.Key == "producer_byte_rate" && v.Value != bIngress*1e6 {
						return fmt.Errorf("producer_byte_rate %v, want B's %v MB/s", v.Value, bIngress)
					}
				}
			}
			return nil
		}))},
		49: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrAlterClientQuotasRequest()
			r.Version = 1
			e := kmsg.NewAlterClientQuotasRequestEntry()
			ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
			ent.Type = "user"
			e.Entity = append(e.Entity, ent)
			op := kmsg.NewAlterClientQuotasRequestEntryOp()
			op.Key, op.Value = "producer_byte_rate", (bIngress-1)*1e6
			e.Ops = append(e.Ops, op)
			r.Entries = append(r.Entries, e)
			return r
		}}, // In B's own cluster: A's rates are checked below.
			check: either(refused(), own(nil))},
		60: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrDescribeClusterRequest()
			r.Version, r.IncludeClusterAuthorizedOperations = 1, true
			return r
		}}, check: func(r kmsg.Response) error {
			if id := r.(*kmsg.DescribeClusterResponse).ClusterID; id != b.cluster {
				return fmt.Errorf("cluster id %q, want B's", id)
			}
			return nil
		}},
		68: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			r.Version, r.Group, r.MemberID, r.RebalanceTimeoutMillis = 0, aGroup, "", 10000
			r.SubscribedTopicNames = []string{aTopic}
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			return r
		}}, check: either(refused(kerr.UnknownMemberID), own(func(r kmsg.Response) error {
			if as := r.(*kmsg.ConsumerGroupHeartbeatResponse).Assignment; as != nil && len(as.Topics) > 0 {
				return fmt.Errorf("assigned %d topics", len(as.Topics))
			}
			return nil
		}))},
		61: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrDescribeProducersRequest()
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused()},
		69: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrConsumerGroupDescribeRequest()
			r.Version, r.Groups = 0, []string{aGroup}
			return r
		}}, check: refused()},
		// Share groups: B may have a share group of the same name, which
		// is assigned none of A's partitions; A's member id and topic id
		// name no session, record or partition of A's (78, 79).
		76: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrShareGroupHeartbeatRequest()
			// Not A's member id: B's own group, described by case 77, would
			// show it back.
			r.GroupID, r.SubscribedTopicNames = aShare, []string{aTopic}
			return r
		}}, check: either(refused(), own(func(r kmsg.Response) error {
			if as := r.(*kmsg.ShareGroupHeartbeatResponse).Assignment; as != nil && len(as.TopicPartitions) > 0 {
				return fmt.Errorf("assigned %d topics", len(as.TopicPartitions))
			}
			return nil
		}))},
		77: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrShareGroupDescribeRequest()
			r.GroupIDs = []string{aShare}
			return r
		}}, check: either(refused(), own(func(r kmsg.Response) error {
			// B's own share group of that name, joined by case 76.
			for _, g := range r.(*kmsg.ShareGroupDescribeResponse).Groups {
				for _, m := range g.Members {
					if len(m.Assignment.TopicPartitions) > 0 {
						return fmt.Errorf("member %s has partitions", m.MemberID)
					}
				}
			}
			return nil
		}))},
		78: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrShareFetchRequest()
			r.GroupID, r.MemberID, r.MaxRecords, r.BatchSize = kmsg.StringPtr(aShare), kmsg.StringPtr(aShareMember), 10, 10
			rt := kmsg.NewShareFetchRequestTopic()
			rt.TopicID = aTopicID
			for p := range int32(2) {
				rp := kmsg.NewShareFetchRequestTopicPartition()
				rp.Partition, rp.PartitionMaxBytes = p, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
			return r
		}}, check: refused()},
		79: {reqs: []func() kmsg.Request{func() kmsg.Request {
			r := kmsg.NewPtrShareAcknowledgeRequest()
			r.GroupID, r.MemberID, r.ShareSessionEpoch = kmsg.StringPtr(aShare), kmsg.StringPtr(aShareMember), 1
			rt := kmsg.NewShareAcknowledgeRequestTopic()
			rt.TopicID = aTopicID
			rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
			ab := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
			ab.FirstOffset, ab.LastOffset, ab.AcknowledgeTypes = 0, 0, []int8{3}
			rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, ab)
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		}}, check: refused(kerr.ShareSessionNotFound, kerr.InvalidShareSessionEpoch)},
		90: {reqs: []func() kmsg.Request{
			func() kmsg.Request {
				r := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
				rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
				rg.GroupID = aShare
				r.Groups = append(r.Groups, rg)
				return r
			},
			topicReq(func(topic string) kmsg.Request {
				r := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
				rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
				rg.GroupID = aShare
				rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
				rt.Topic, rt.Partitions = topic, []int32{0, 1}
				rg.Topics = append(rg.Topics, rt)
				r.Groups = append(r.Groups, rg)
				return r
			}),
		}, check: either(refused(), own(func(r kmsg.Response) error {
			for _, g := range r.(*kmsg.DescribeShareGroupOffsetsResponse).Groups {
				if len(g.Topics) > 0 {
					return fmt.Errorf("offsets of %d topics", len(g.Topics))
				}
			}
			return nil
		}))},
		// B's own share group of that name has the member of case 76.
		91: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrAlterShareGroupOffsetsRequest()
			r.GroupID = aShare
			rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused(kerr.NonEmptyGroup)},
		92: {reqs: []func() kmsg.Request{topicReq(func(topic string) kmsg.Request {
			r := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
			r.GroupID = aShare
			rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
			rt.Topic = topic
			r.Topics = append(r.Topics, rt)
			return r
		})}, check: refused(kerr.NonEmptyGroup)},
	}

	for _, who := range []struct {
		name string
		acct account
	}{{"b-admin", account{sa: b.sa, keyID: b.keyID, secret: b.secret}}, {"b-nobody", bNobody}} {
		t.Run(who.name, func(t *testing.T) {
			cl := newClient(t, s, who.acct.auth())
			// The API table, as the broker advertises it.
			av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
				t.Fatal(err)
			}
			// One connection per broker, spoken by hand so every request
			// goes at exactly the version written here.
			conns := map[int]*rawConn{}
			for id := 1; id <= 2; id++ {
				conns[id] = dialPlain(t, s.Broker(id).Addr, who.acct)
			}
			if len(av.ApiKeys) < 30 {
				t.Fatalf("ApiVersions lists %d APIs", len(av.ApiKeys))
			}
			for _, k := range av.ApiKeys {
				name := fmt.Sprintf("%s(%d)", kmsg.NameForKey(k.ApiKey), k.ApiKey)
				c, ok := cases[k.ApiKey]
				if !ok {
					t.Errorf("%s has no isolation case: add one to TestIsolationMatrix", name)
					continue
				}
				if c.raw {
					sent = []byte(a.cluster) // SaslAuthenticate names it
					isoRaw(t, s, k.ApiKey, who.acct, a.cluster, noneOf(forbidden))
					continue
				}
				for i, mk := range c.reqs {
					for id, rc := range conns {
						req := mk()
						req.SetVersion(min(req.GetVersion(), k.MaxVersion))
						sent = req.AppendTo(nil)
						resp := rc.do(req)
						if err := c.check(resp); err != nil {
							t.Errorf("%s request %d on broker %d: %v: %+v", name, i, id, err, resp)
						}
						if err := noneOf(forbidden)(resp); err != nil {
							t.Errorf("%s request %d on broker %d: the answer %v", name, i, id, err)
						}
					}
				}
			}
			// Listings: B sees only its own.
			md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			sent = nil
			if err := noneOf(listingForbidden)(md); err != nil {
				t.Errorf("Metadata of all topics %v", err)
			}
			// Besides its topics, B's admin sees B's internal topics (ids
			// of B's cluster, not A's).
			internal := 0
			for _, tp := range md.Topics {
				if tp.IsInternal && tp.Topic != nil && (*tp.Topic == "__consumer_offsets" || *tp.Topic == "__transaction_state") &&
					tp.TopicID != [16]byte(aOffsetsID) {
					internal++
					continue
				}
				if tp.TopicID == aOrdersID || (tp.Topic != nil && *tp.Topic != "orders") {
					t.Errorf("B's Metadata lists %v %x", tp.Topic, tp.TopicID)
				}
			}
			if who.name == "b-admin" && (len(md.Topics)-internal != 1 || internal != 2) {
				t.Errorf("B's admin sees %d topics (%d internal), want its own orders and 2 internal", len(md.Topics), internal)
			}
		})
	}

	// A is intact: topic, configs, data, group offsets, ACL.
	td, err = admA.ListTopics(ctx, aTopic)
	if err != nil || len(td[aTopic].Partitions) != 2 {
		t.Fatalf("A's topic after B's attempts: %v %+v", err, td)
	}
	rc, err := admA.DescribeTopicConfigs(ctx, aTopic)
	if err != nil || configValue(t, rc, "retention.ms") != "86400000" {
		t.Fatalf("A's topic configs: %v", err)
	}
	if recs := consumeAs(t, s, authA, 1); string(recs[0].Value) != secret {
		t.Fatalf("A's orders read %q", recs[0].Value)
	}
	fo, err := admA.FetchOffsets(ctx, aGroup)
	if o, ok := fo.Lookup(aTopic, 0); err != nil || !ok || o.At != 1 {
		t.Fatalf("A's group offsets: %v %+v", err, fo)
	}
	ds, err := admA.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(ds) != 1 || len(ds[0].Described) != 1 || ds[0].Described[0].Name != aACLTopic {
		t.Fatalf("A's ACLs after B's attempts: %v %+v", err, ds)
	}
	dt, err := admA.DescribeTransactions(ctx, aTxn)
	if d, ok := dt[aTxn]; err != nil || !ok || d.State != "Ongoing" || d.ProducerID != aPID || d.ProducerEpoch != aEpoch {
		t.Fatalf("A's transaction after B's attempts: %v %+v", err, dt)
	}
	// A's rates are A's: B's AlterClientQuotas changed B's.
	qs, err := admA.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 1}})
	if err != nil || len(qs) != 1 || len(qs[0].Values) == 0 {
		t.Fatalf("A's client quotas: %v %+v", err, qs)
	}
	for _, v := range qs[0].Values {
		if v.Key == "producer_byte_rate" && v.Value != ingress[a.cluster]*1e6 {
			t.Errorf("A's producer_byte_rate after B's attempts: %v", v.Value)
		}
	}
	// A's share group keeps its member, which still holds nothing B could
	// have touched.
	if now := shareMemberOf(t, clA, aShare); now != aShareMember {
		t.Fatalf("A's share group member after B's attempts: %q, want %q", now, aShareMember)
	}
	so, err := admA.DescribeShareGroupOffsets(ctx, aShare)
	var started int64
	for _, o := range so[aShare].Offsets[aTopic] {
		started += o.StartOffset
	}
	if err != nil || started != 1 {
		t.Fatalf("A's share-group offsets after B's attempts: %v %+v", err, so)
	}
	// B's orders has B's partitions, A's has A's.
	bmd, err := kadm.NewClient(clBAdmin).ListTopics(ctx, "orders")
	if err != nil || len(bmd["orders"].Partitions) != 3 || bmd["orders"].ID == aOrdersID {
		t.Fatalf("B's orders: %v %+v", err, bmd)
	}
}

// isoRaw covers the APIs spoken before authentication, on a fresh
// connection: SaslHandshake and ApiVersions name nothing of a tenant;
// SaslAuthenticate with B's key naming A's cluster fails.
func isoRaw(t *testing.T, s *stack.Stack, key int16, acct account, aCluster string, clean func(kmsg.Response) error) {
	t.Helper()
	switch key {
	case 17, 18:
		rc := dialPlain(t, s.Bootstrap()[0], acct)
		var req kmsg.Request = kmsg.NewPtrApiVersionsRequest()
		if key == 17 {
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 1, "PLAIN"
			req = hs
		}
		if err := clean(rc.do(req)); err != nil {
			t.Errorf("%s: the answer %v", kmsg.NameForKey(key), err)
		}
	case 36:
		for _, user := range []string{acct.keyID + "@" + aCluster} {
			rc := dialRaw(t, s.Bootstrap()[0])
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 1, "PLAIN"
			rc.do(hs)
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.Version, au.SASLAuthBytes = 1, []byte("\x00"+user+"\x00"+acct.secret)
			resp := rc.do(au).(*kmsg.SASLAuthenticateResponse)
			rc.nc.Close()
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Errorf("SaslAuthenticate naming A's cluster: %v", kerr.ErrorForCode(resp.ErrorCode))
			}
			if err := clean(resp); err != nil {
				t.Errorf("SaslAuthenticate: the answer %v", err)
			}
		}
	}
}

// shareMemberOf returns the one member of a share group, as its
// coordinator describes it.
func shareMemberOf(t *testing.T, cl *kgo.Client, group string) string {
	t.Helper()
	var member string
	poll.Until(t, 30*time.Second, "share group "+group+" to have one member", func() error {
		r := kmsg.NewPtrShareGroupDescribeRequest()
		r.GroupIDs = []string{group}
		resp, err := r.RequestWith(context.Background(), cl)
		if err != nil {
			return err
		}
		g := resp.Groups[0]
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return err
		}
		if len(g.Members) != 1 {
			return fmt.Errorf("%d members", len(g.Members))
		}
		member = g.Members[0].MemberID
		return nil
	})
	return member
}
