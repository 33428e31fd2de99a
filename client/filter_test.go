package client

import (
	"net/url"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

func intPtr(n int) *int { return &n }

func TestMessageFilterQuery(t *testing.T) {
	start := time.Date(2023, 11, 14, 22, 13, 20, 123_000_000, time.UTC) // 1700000000.123
	end := time.Unix(1800000000, 0)
	tests := []struct {
		name string
		f    MessageFilter
		p    Page
		want string
	}{
		{"empty", MessageFilter{}, Page{}, ""},
		{"page mode", MessageFilter{}, Page{Number: 2, Size: 5}, "pagination=5&page=2"},
		{"no limit", MessageFilter{}, Page{Size: NoLimit}, "pagination=0"},
		{"cursor first page", MessageFilter{}, FirstCursor(50), "pagination=50&cursor="},
		{"cursor ignores number", MessageFilter{}, Page{Number: 3, Size: 10, Cursor: strPtr("eyJoIjoiYSJ9")}, "pagination=10&cursor=eyJoIjoiYSJ9"},
		{
			"every filter",
			MessageFilter{
				Types:         []message.Type{message.TypePost, message.TypeAggregate},
				Statuses:      []message.Status{message.StatusProcessed, message.StatusRemoving},
				Addresses:     []string{"0xA", "0xB"},
				Owners:        []string{"0xO"},
				Refs:          []string{"r1"},
				ContentHashes: []string{"ch"},
				ContentKeys:   []string{"ck"},
				ContentTypes:  []string{"ct"},
				Chains:        []message.Chain{message.ChainETH, message.ChainSOL},
				Channels:      []string{"TEST"},
				Tags:          []string{"t1", "t2"},
				Hashes:        []string{"h1", "h2"},
				PaymentTypes:  []string{"hold"},
				StartDate:     start,
				EndDate:       end,
				StartBlock:    10,
				EndBlock:      20,
				SortBy:        "tx-time",
				SortOrder:     Ascending,
				ContentFormat: ContentHeaders,
			},
			Page{Number: 1, Size: 20},
			"msgTypes=POST,AGGREGATE&msgStatuses=processed,removing&addresses=0xA,0xB&owners=0xO&refs=r1" +
				"&contentHashes=ch&contentKeys=ck&contentTypes=ct&chains=ETH,SOL&channels=TEST&tags=t1,t2&hashes=h1,h2" +
				"&paymentTypes=hold&startDate=1700000000.123&endDate=1800000000&startBlock=10&endBlock=20" +
				"&sortBy=tx-time&sortOrder=1&contentFormat=headers&pagination=20&page=1",
		},
		{"descending", MessageFilter{SortOrder: Descending}, Page{}, "sortOrder=-1"},
		{"escaping", MessageFilter{Channels: []string{"a b&c=d", " ", ""}, Tags: []string{"x,y"}}, Page{}, "channels=a+b%26c%3Dd&tags=x%2Cy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.f.Query(tc.p)
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if _, err := url.ParseQuery(got); err != nil {
				t.Errorf("not a valid query: %v", err)
			}
		})
	}
}

func strPtr(s string) *string { return &s }

func TestOtherQueries(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"posts", PostFilter{
			Types: []string{"t1", "t2"}, Refs: []string{"r"}, Addresses: []string{"a1"}, Tags: []string{"x"},
			Hashes: []string{"h1"}, Channels: []string{"TEST"}, Chains: []message.Chain{message.ChainETH},
			StartDate: time.Unix(1700000000, 0), SortBy: "time", SortOrder: Descending,
		}.Query(Page{Number: 1, Size: 50}),
			"types=t1,t2&refs=r&addresses=a1&tags=x&hashes=h1&channels=TEST&chains=ETH&startDate=1700000000&sortBy=time&sortOrder=-1&pagination=50&page=1"},
		{"aggregates", AggregateFilter{Keys: []string{"k1", "k2"}, Addresses: []string{"0xA"}, SortBy: "creation_time", SortOrder: Ascending}.Query(Page{Size: 100, Number: 2}),
			"keys=k1,k2&addresses=0xA&sortBy=creation_time&sortOrder=1&pagination=100&page=2"},
		{"address aggregates", AggregateQuery{Keys: []string{"profile", "security"}, WithInfo: true}.query(), "keys=profile,security&with_info=true"},
		{"address aggregates bare", AggregateQuery{}.query(), ""},
		{"watch", WatchFilter{MessageFilter: MessageFilter{Refs: []string{"r"}, Addresses: []string{"0xA"}}, History: intPtr(5)}.Query(),
			"addresses=0xA&refs=r&history=5"},
		{"watch history 0", WatchFilter{History: intPtr(0)}.Query(), "history=0"},
		{"watch default history", WatchFilter{}.Query(), ""},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestFormatUnix(t *testing.T) {
	tests := map[time.Time]string{
		time.Unix(1700000000, 0):                      "1700000000",
		time.Unix(1700000000, 123_000_000):            "1700000000.123",
		time.Unix(1700000000, 123_999_999):            "1700000000.123", // milliseconds, as the SDKs send
		time.Unix(1700000000, 500_000_000):            "1700000000.5",
		time.UnixMilli(1).UTC():                       "0.001",
		time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC): "1000000000",
	}
	for in, want := range tests {
		if got := formatUnix(in); got != want {
			t.Errorf("formatUnix(%v) = %s, want %s", in, got, want)
		}
	}
}
