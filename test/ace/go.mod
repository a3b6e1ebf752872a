module podlog/test/ace

go 1.19

require github.com/appc/spec v0.8.11

require (
	github.com/coreos/go-semver v0.2.0 // indirect
	github.com/google/gofuzz v1.2.0 // indirect
	github.com/spf13/pflag v1.0.0 // indirect
	go4.org v0.0.0-20180809161055-417644f6feb5 // indirect
	gopkg.in/inf.v0 v0.9.1 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)
